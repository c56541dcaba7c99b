/*
 * discover: find a PCP server among candidates given on the command line,
 * then print what it says about itself.
 *
 *   discover CANDIDATE...
 *
 * Each CANDIDATE is "host", "host:port", IPv4 or IPv6 (port 5351 by
 * default), or "test" for an in-process test server on loopback. Discovery
 * sends ANNOUNCE to every candidate and takes the first that answers (not
 * the routing table's gateways: only the candidates). Prints
 *   SERVER <ip> <port>
 *   EXTERNAL <external_ip>
 *   EPOCH <server epoch>
 * Errors go to stderr (with the status name, e.g. NO_GATEWAY when no
 * candidate answered); the exit status is then non-zero.
 *
 * Build: cc discover.c $(pkg-config --cflags --libs pcp_rs) -o discover
 */
#include <stdio.h>
#include <string.h>

#include <pcp.h>

static int fail(const char *what, pcp_status st) {
    fprintf(stderr, "discover: %s: %s (%s)\n", what, pcp_last_error(), pcp_status_name(st));
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: discover CANDIDATE...\n");
        return 2;
    }
    pcp_test_server *test_server = NULL;
    pcp_config *cfg = NULL;
    pcp_client *client = NULL;
    pcp_status st;
    int rc = 1;
    if ((st = pcp_config_new(&cfg)) != PCP_OK) return fail("config", st);
    for (int i = 1; i < argc; i++) {
        char candidate[128];
        if (strcmp(argv[i], "test") == 0) {
            if (test_server == NULL && (st = pcp_test_server_start(NULL, &test_server)) != PCP_OK) {
                rc = fail("test server", st);
                goto out;
            }
            pcp_test_server_address(test_server, candidate, sizeof candidate);
            /* The test server announces to the client's own socket. */
            pcp_config_set_listen_announce(cfg, false);
        } else {
            snprintf(candidate, sizeof candidate, "%s", argv[i]);
        }
        if ((st = pcp_config_add_discovery_candidate(cfg, candidate)) != PCP_OK) {
            rc = fail(argv[i], st);
            goto out;
        }
    }
    if ((st = pcp_client_discover(cfg, &client)) != PCP_OK) {
        rc = fail("discovery", st);
        goto out;
    }

    char server[PCP_ADDRSTRLEN], external[PCP_ADDRSTRLEN];
    uint16_t port = 0;
    uint32_t epoch = 0;
    if ((st = pcp_gateway_address(client, server, sizeof server, &port)) != PCP_OK) {
        rc = fail("server address", st);
        goto out;
    }
    printf("SERVER %s %u\n", server, (unsigned)port);
    if ((st = pcp_external_address(client, external, sizeof external)) != PCP_OK) {
        rc = fail("external address", st);
        goto out;
    }
    printf("EXTERNAL %s\n", external);
    if ((st = pcp_announce(client, &epoch)) != PCP_OK) {
        rc = fail("announce", st);
        goto out;
    }
    printf("EPOCH %u\n", (unsigned)epoch);
    rc = 0;
out:
    pcp_client_free(client);
    pcp_config_free(cfg);
    pcp_test_server_free(test_server);
    return rc;
}
