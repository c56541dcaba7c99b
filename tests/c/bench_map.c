/*
 * The C side of the map-rate benchmark: the same loop as
 * `cargo run --release -p pcp-core --example map_rate -- COUNT`, through the
 * C API. Sequential MAP round trips to an in-process test server on
 * loopback: internal ports 10000+i, TCP, 3600 s; prints `map_rate <per second>`.
 * `bench_map COUNT callback` also registers a (no-op) event callback.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <pcp.h>

static void on_event(void *userdata, const pcp_event *ev) {
    (void)userdata;
    (void)ev;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 2000;
    if (count <= 0 || count > 55535) {
        fprintf(stderr, "bench_map: COUNT is 1..55535\n");
        return 2;
    }
    pcp_test_server *server = NULL;
    char addr[64];
    if (pcp_test_server_start(NULL, &server) != PCP_OK ||
        pcp_test_server_address(server, addr, sizeof addr) != PCP_OK) {
        fprintf(stderr, "bench_map: %s\n", pcp_last_error());
        return 1;
    }
    pcp_config *cfg = NULL;
    pcp_config_new(&cfg);
    pcp_config_set_listen_announce(cfg, false);
    pcp_config_set_delete_on_close(cfg, false);
    pcp_client *client = NULL;
    if (pcp_client_new(addr, cfg, &client) != PCP_OK) {
        fprintf(stderr, "bench_map: %s\n", pcp_last_error());
        return 1;
    }
    pcp_config_free(cfg);
    if (argc > 2) pcp_client_set_event_callback(client, on_event, NULL);
    pcp_mapping *m = NULL;
    /* Warm up the path before timing, as the Rust loop does. */
    if (pcp_map(client, PCP_PROTO_UDP, 9999, 0, 3600, &m) != PCP_OK) {
        fprintf(stderr, "bench_map: %s\n", pcp_last_error());
        return 1;
    }
    pcp_mapping_free(m);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < count; i++) {
        pcp_status st = pcp_map(client, PCP_PROTO_TCP, (uint16_t)(10000 + i), 0, 3600, &m);
        if (st != PCP_OK) {
            fprintf(stderr, "bench_map: map %ld: %s\n", i, pcp_last_error());
            return 1;
        }
        pcp_mapping_free(m);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("map_rate %.0f\n", (double)count / secs);
    pcp_client_free(client);
    pcp_test_server_free(server);
    return 0;
}
