/*
 * peer: ask for a PEER mapping (an outbound mapping towards one remote
 * peer), print it, delete it.
 *
 *   peer SERVER INTERNAL_PORT REMOTE_IP REMOTE_PORT
 *
 * SERVER is as for map_keep ("test" for an in-process test server).
 * Build: cc peer.c $(pkg-config --cflags --libs pcp_rs) -o peer
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcp.h>

static int fail(const char *what, pcp_status st) {
    fprintf(stderr, "peer: %s: %s (%s)\n", what, pcp_last_error(), pcp_status_name(st));
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: peer SERVER INTERNAL_PORT REMOTE_IP REMOTE_PORT\n");
        return 2;
    }
    int internal_port = atoi(argv[2]), remote_port = atoi(argv[4]);
    if (internal_port <= 0 || internal_port > 65535 || remote_port <= 0 || remote_port > 65535) {
        fprintf(stderr, "peer: ports are 1..65535\n");
        return 2;
    }
    pcp_test_server *test_server = NULL;
    char server[128];
    pcp_config *cfg = NULL;
    pcp_status st = pcp_config_new(&cfg);
    if (st != PCP_OK) return fail("config", st);
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

    int rc = 0;
    pcp_peer_request req;
    pcp_peer_request_init(&req, PCP_PROTO_TCP, (uint16_t)internal_port, argv[3], (uint16_t)remote_port);
    pcp_mapping *m = NULL;
    if ((st = pcp_peer(client, &req, &m)) != PCP_OK) {
        rc = fail("peer", st);
    } else {
        char ext[PCP_ADDRSTRLEN];
        pcp_mapping_external_address(m, ext, sizeof ext);
        printf("PEER %s %u -> %s %d, lifetime %u\n", ext, (unsigned)pcp_mapping_external_port(m), argv[3], remote_port,
               (unsigned)pcp_mapping_lifetime(m));
        if ((st = pcp_mapping_delete(m)) != PCP_OK) rc = fail("delete", st);
        else printf("DELETED\n");
        pcp_mapping_free(m);
    }
    pcp_client_free(client);
    pcp_test_server_free(test_server);
    return rc;
}
