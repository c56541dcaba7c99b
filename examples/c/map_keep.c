/*
 * map_keep: map a TCP port, keep it (renewals printed by the event
 * callback), then delete it.
 *
 *   map_keep SERVER INTERNAL_PORT HOLD_SECONDS [LIFETIME]
 *
 * SERVER is "host", "host:port", IPv4 or IPv6, or "test" for an in-process
 * test server on loopback. Prints exactly one line
 *   MAPPED <external_ip> <external_port> <lifetime>
 * then one line per event while it holds (RENEWED ..., SERVER_RESTARTED ...),
 * then DELETED after deleting the mapping. Errors go to stderr; the exit
 * status is then non-zero.
 *
 * Build: cc map_keep.c $(pkg-config --cflags --libs pcp_rs) -o map_keep
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcp.h>

static void on_event(void *userdata, const pcp_event *ev) {
    (void)userdata;
    switch (ev->kind) {
    case PCP_EVENT_RENEWED:
        printf("RENEWED %s %u %u\n", ev->external_address_text, (unsigned)ev->external_port, (unsigned)ev->lifetime);
        break;
    case PCP_EVENT_LOST:
        printf("LOST %s\n", ev->message ? ev->message : "");
        break;
    case PCP_EVENT_SERVER_RESTARTED:
        printf("SERVER_RESTARTED %u\n", (unsigned)ev->epoch);
        break;
    case PCP_EVENT_EXTERNAL_ADDRESS_CHANGED:
        printf("EXTERNAL_ADDRESS_CHANGED %s %s\n", ev->old_address_text, ev->external_address_text);
        break;
    default:
        return;
    }
    fflush(stdout);
}

static int fail(const char *what, pcp_status st) {
    fprintf(stderr, "map_keep: %s: %s (%s)\n", what, pcp_last_error(), pcp_status_name(st));
    return 1;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max) return 0;
    *out = v;
    return 1;
}

int main(int argc, char **argv) {
    unsigned long port, hold, lifetime = 3600;
    if (argc < 4 || argc > 5 || !parse_uint(argv[2], 65535, &port) || port == 0 ||
        !parse_uint(argv[3], 86400UL * 365, &hold) || (argc == 5 && !parse_uint(argv[4], 0xffffffffUL, &lifetime))) {
        fprintf(stderr, "usage: map_keep SERVER INTERNAL_PORT HOLD_SECONDS [LIFETIME]\n");
        return 2;
    }

    pcp_test_server *test_server = NULL;
    char server[128];
    pcp_status st;
    pcp_config *cfg = NULL;
    if ((st = pcp_config_new(&cfg)) != PCP_OK) return fail("config", st);
    if (strcmp(argv[1], "test") == 0) {
        if ((st = pcp_test_server_start(NULL, &test_server)) != PCP_OK) return fail("test server", st);
        pcp_test_server_address(test_server, server, sizeof server);
        pcp_config_set_listen_announce(cfg, false);
    } else {
        snprintf(server, sizeof server, "%s", argv[1]);
    }

    pcp_client *client = NULL;
    st = pcp_client_new(server, cfg, &client);
    pcp_config_free(cfg);
    if (st != PCP_OK) {
        pcp_test_server_free(test_server);
        return fail("connect", st);
    }
    pcp_client_set_event_callback(client, on_event, NULL);

    int rc = 0;
    pcp_mapping *m = NULL;
    st = pcp_map(client, PCP_PROTO_TCP, (uint16_t)port, 0, (uint32_t)lifetime, &m);
    if (st != PCP_OK) {
        rc = fail("map", st);
    } else {
        char ext[PCP_ADDRSTRLEN];
        pcp_mapping_external_address(m, ext, sizeof ext);
        printf("MAPPED %s %u %u\n", ext, (unsigned)pcp_mapping_external_port(m), (unsigned)pcp_mapping_lifetime(m));
        fflush(stdout);

        /* Hold: the client's own thread renews the mapping meanwhile. */
        struct timespec left = {(time_t)hold, 0};
        while (nanosleep(&left, &left) != 0 && errno == EINTR) {
        }

        st = pcp_mapping_delete(m);
        if (st != PCP_OK) {
            rc = fail("delete", st);
        } else {
            printf("DELETED\n");
            fflush(stdout);
        }
        pcp_mapping_free(m);
    }
    pcp_client_free(client);
    pcp_test_server_free(test_server);
    return rc;
}
