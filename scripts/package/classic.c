/*
 * The classic example: map a TCP port, print what the gateway granted,
 * delete the mapping.
 *
 *   classic SERVER INTERNAL_PORT      e.g. classic 192.168.1.1 8080
 *
 * Prints "MAPPED <external_ip> <external_port> <lifetime>" then "DELETED";
 * errors go to stderr with exit status 1.
 *
 * Build: cc classic.c $(pkg-config --cflags --libs pcp_rs) -o classic
 */
#include <stdio.h>
#include <stdlib.h>

#include <pcp.h>

static int fail(const char *what, pcp_status st) {
    fprintf(stderr, "classic: %s: %s (%s)\n", what, pcp_last_error(), pcp_status_name(st));
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: classic SERVER INTERNAL_PORT\n");
        return 2;
    }
    int port = atoi(argv[2]);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "classic: bad port %s\n", argv[2]);
        return 2;
    }

    pcp_client *client = NULL;
    pcp_status st = pcp_client_new(argv[1], NULL, &client);
    if (st != PCP_OK) return fail("connect", st);

    int rc = 0;
    pcp_mapping *m = NULL;
    st = pcp_map(client, PCP_PROTO_TCP, (uint16_t)port, 0, 3600, &m);
    if (st != PCP_OK) {
        rc = fail("map", st);
    } else {
        char ext[PCP_ADDRSTRLEN];
        pcp_mapping_external_address(m, ext, sizeof ext);
        printf("MAPPED %s %u %u\n", ext, (unsigned)pcp_mapping_external_port(m), (unsigned)pcp_mapping_lifetime(m));
        st = pcp_mapping_delete(m);
        if (st != PCP_OK) {
            rc = fail("delete", st);
        } else {
            printf("DELETED\n");
        }
        pcp_mapping_free(m);
    }
    pcp_client_free(client);
    return rc;
}
