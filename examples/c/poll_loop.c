/*
 * poll_loop: drive PCP from your own event loop, without the library's
 * background thread: watch the endpoint's descriptors with poll(), call
 * pcp_endpoint_process() when one is readable or the timeout passes.
 *
 *   poll_loop SERVER INTERNAL_PORT SECONDS [LIFETIME]
 *
 * Maps UDP INTERNAL_PORT, keeps it for SECONDS (renewals happen inside
 * pcp_endpoint_process), deletes it and exits. SERVER as for map_keep.
 * Build: cc poll_loop.c $(pkg-config --cflags --libs pcp_rs) -o poll_loop
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcp.h>

typedef struct {
    int granted, deleted, failed;
} state;

static void on_event(void *userdata, const pcp_event *ev) {
    state *s = (state *)userdata;
    switch (ev->kind) {
    case PCP_EVENT_GRANTED:
        s->granted = 1;
        printf("GRANTED %s %u %u\n", ev->external_address_text, (unsigned)ev->external_port, (unsigned)ev->lifetime);
        break;
    case PCP_EVENT_RENEWED:
        printf("RENEWED %s %u %u\n", ev->external_address_text, (unsigned)ev->external_port, (unsigned)ev->lifetime);
        break;
    case PCP_EVENT_FAILED:
        s->failed = 1;
        fprintf(stderr, "poll_loop: map failed: %s\n", ev->message);
        break;
    case PCP_EVENT_DELETED:
        s->deleted = 1;
        printf("DELETED %s\n", pcp_status_name(ev->status));
        break;
    default:
        break;
    }
    fflush(stdout);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One turn of the loop: wait for the sockets or the deadline, then process. */
static int turn(pcp_endpoint *e, const pcp_socket *fds, size_t n, int max_wait_ms) {
    struct pollfd p[PCP_ENDPOINT_MAX_FDS];
    for (size_t i = 0; i < n; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    int timeout = pcp_endpoint_timeout_ms(e);
    if (timeout < 0 || timeout > max_wait_ms) timeout = max_wait_ms;
    if (poll(p, (nfds_t)n, timeout) < 0) return 0;
    return pcp_endpoint_process(e) == PCP_OK;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: poll_loop SERVER INTERNAL_PORT SECONDS [LIFETIME]\n");
        return 2;
    }
    int port = atoi(argv[2]);
    double seconds = atof(argv[3]);
    long lifetime = argc == 5 ? atol(argv[4]) : 3600;
    if (port <= 0 || port > 65535 || seconds < 0 || lifetime <= 0) {
        fprintf(stderr, "poll_loop: bad arguments\n");
        return 2;
    }
    pcp_test_server *test_server = NULL;
    char server[128];
    pcp_config *cfg = NULL;
    pcp_config_new(&cfg);
    if (strcmp(argv[1], "test") == 0) {
        if (pcp_test_server_start(NULL, &test_server) != PCP_OK) {
            fprintf(stderr, "poll_loop: test server: %s\n", pcp_last_error());
            return 1;
        }
        pcp_test_server_address(test_server, server, sizeof server);
        pcp_config_set_listen_announce(cfg, false);
    } else {
        snprintf(server, sizeof server, "%s", argv[1]);
    }
    pcp_endpoint *e = NULL;
    pcp_status st = pcp_endpoint_new(server, cfg, &e);
    pcp_config_free(cfg);
    if (st != PCP_OK) {
        fprintf(stderr, "poll_loop: %s\n", pcp_last_error());
        pcp_test_server_free(test_server);
        return 1;
    }
    state s = {0, 0, 0};
    pcp_endpoint_set_event_callback(e, on_event, &s);
    pcp_socket fds[PCP_ENDPOINT_MAX_FDS];
    size_t n = 0;
    pcp_endpoint_fds(e, fds, PCP_ENDPOINT_MAX_FDS, &n);

    pcp_map_request req;
    pcp_map_request_init(&req, PCP_PROTO_UDP, (uint16_t)port);
    req.lifetime = (uint32_t)lifetime;
    uint64_t id = 0;
    int rc = 0;
    if (pcp_endpoint_map(e, &req, &id) != PCP_OK) {
        fprintf(stderr, "poll_loop: %s\n", pcp_last_error());
        rc = 1;
    } else {
        /* Until granted or failed: the endpoint's retransmission deadline bounds it. */
        while (!s.granted && !s.failed && turn(e, fds, n, 1000)) {
        }
        if (s.failed) rc = 1;
        double until = now_s() + seconds;
        while (s.granted && now_s() < until && turn(e, fds, n, 200)) {
        }
        if (s.granted && pcp_endpoint_delete(e, id) == PCP_OK) {
            while (!s.deleted && turn(e, fds, n, 1000)) {
            }
        }
    }
    pcp_endpoint_free(e);
    pcp_test_server_free(test_server);
    return rc;
}
