/*
 * Eight threads on one pcp_client, a thousand requests each, mixing
 * pcp_map, pcp_mapping_delete and pcp_peer on ports of their own and on one
 * port they all share: every call gets its own answer, nothing lost or
 * crossed. The shared port goes through pcp_map_ex, not the classic pcp_map
 * (whose shared-port semantics belong to the classic API): each call is its
 * own mapping with its own nonce, so the server grants it to one holder at
 * a time and refuses the others with PCP_NOT_AUTHORIZED.
 * Run by tests/c/run.sh (natively: 14000 round trips are too slow under
 * valgrind for the suite). Prints `concurrency-c: N calls, M failed`.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pcp.h"

#define THREADS 8
#ifndef REQUESTS
#define REQUESTS 1000
#endif
#define SHARED_PORT 9999

typedef struct {
    pcp_client *client;
    int t;
    int calls, failures, shared_granted;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    for (int i = 0; i < REQUESTS; i++) {
        uint16_t port = (uint16_t)(10000 + a->t * 500 + i % 400);
        uint8_t proto = i % 2 == 0 ? PCP_PROTO_TCP : PCP_PROTO_UDP;
        pcp_mapping *m = NULL;
        pcp_status st;
        if (i % 3 == 0) {
            st = pcp_map(a->client, proto, port, port, 600, &m);
            if (st != PCP_OK || pcp_mapping_internal_port(m) != port || pcp_mapping_external_port(m) != port ||
                pcp_mapping_protocol(m) != proto) {
                fprintf(stderr, "thread %d map %u: %s\n", a->t, port, pcp_status_name(st));
                a->failures++;
            }
        } else if (i % 3 == 1) {
            pcp_peer_request r;
            char peer[32];
            snprintf(peer, sizeof peer, "198.51.100.%d", a->t + 1);
            pcp_peer_request_init(&r, proto, port, peer, (uint16_t)(1000 + i));
            st = pcp_peer(a->client, &r, &m);
            if (st != PCP_OK || pcp_mapping_internal_port(m) != port || pcp_mapping_protocol(m) != proto) {
                fprintf(stderr, "thread %d peer %u: %s\n", a->t, port, pcp_status_name(st));
                a->failures++;
            }
        } else {
            pcp_map_request r;
            pcp_map_request_init(&r, PCP_PROTO_TCP, SHARED_PORT);
            r.lifetime = 600;
            st = pcp_map_ex(a->client, &r, &m);
            if (st == PCP_OK) {
                a->shared_granted++;
                if (pcp_mapping_internal_port(m) != SHARED_PORT) a->failures++;
            } else if (st != PCP_NOT_AUTHORIZED) {
                fprintf(stderr, "thread %d shared: %s\n", a->t, pcp_status_name(st));
                a->failures++;
            }
        }
        a->calls++;
        if (m) {
            if (pcp_mapping_delete(m) != PCP_OK) {
                fprintf(stderr, "thread %d delete: %s\n", a->t, pcp_last_error());
                a->failures++;
            }
            a->calls++;
            pcp_mapping_free(m);
        }
    }
    return NULL;
}

int main(void) {
    pcp_test_server *srv = NULL;
    pcp_config *cfg = NULL;
    pcp_client *client = NULL;
    char addr[64];
    if (pcp_test_server_start(NULL, &srv) != PCP_OK || pcp_test_server_address(srv, addr, sizeof addr) != PCP_OK ||
        pcp_config_new(&cfg) != PCP_OK) {
        fprintf(stderr, "setup: %s\n", pcp_last_error());
        return 1;
    }
    pcp_config_set_listen_announce(cfg, false);
    pcp_config_set_deadline_ms(cfg, 20000);
    if (pcp_client_new(addr, cfg, &client) != PCP_OK) {
        fprintf(stderr, "client: %s\n", pcp_last_error());
        return 1;
    }
    pcp_config_free(cfg);
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&args[t], 0, sizeof args[t]);
        args[t].client = client;
        args[t].t = t;
        pthread_create(&th[t], NULL, worker, &args[t]);
    }
    int calls = 0, failures = 0, shared = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        calls += args[t].calls;
        failures += args[t].failures;
        shared += args[t].shared_granted;
    }
    if (shared == 0) {
        fprintf(stderr, "the shared port was never granted\n");
        failures++;
    }
    if (pcp_test_server_mapping_count(srv) != 0) {
        fprintf(stderr, "the server still holds %zu mappings\n", pcp_test_server_mapping_count(srv));
        failures++;
    }
    pcp_client_free(client);
    pcp_test_server_free(srv);
    printf("concurrency-c: %d calls (shared port granted %d times), %d failed\n", calls, shared, failures);
    return failures == 0 ? 0 : 1;
}
