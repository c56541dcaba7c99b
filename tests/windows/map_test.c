/*
 * map_test: the C API through the Windows pcp_rs.dll, under wine (see
 * scripts/test-windows.sh). Against the library's test server on loopback:
 *  1. a blocking client maps a TCP port and deletes it;
 *  2. an endpoint driven by the program's own select() loop on its
 *     pcp_socket (a winsock SOCKET here) maps a UDP port;
 *  3. a server that is not there (a closed loopback port) fails with
 *     PCP_SERVER_UNREACHABLE (ICMP port unreachable), not with a timeout.
 *     On Windows the ICMP error arrives as WSAECONNRESET on the next
 *     receive, at once; wine 8.0 reports it only to the next send, which is
 *     the first retransmission (about 3 s): the time is printed, and the
 *     check allows for wine.
 * Prints "ok N - what" per check and exits non-zero on the first failure.
 */
#include <winsock2.h>
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcp.h>

static int checks = 0;

#define CHECK(cond, what)                                                          \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "not ok - %s (%s)\n", what, pcp_last_error());        \
            return 1;                                                              \
        }                                                                          \
        printf("ok %d - %s\n", ++checks, what);                                    \
    } while (0)

typedef struct {
    int granted, failed;
    uint16_t external_port;
} state;

static void on_event(void *userdata, const pcp_event *ev) {
    state *s = (state *)userdata;
    if (ev->kind == PCP_EVENT_GRANTED) {
        s->granted = 1;
        s->external_port = ev->external_port;
    } else if (ev->kind == PCP_EVENT_FAILED) {
        s->failed = 1;
    }
}

/* A loopback UDP port nobody listens on (bound, read, closed). */
static unsigned short closed_port(void) {
    SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    struct sockaddr_in a;
    int len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &len);
    closesocket(s);
    return ntohs(a.sin_port);
}

int main(int argc, char **argv) {
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) return 1;

    pcp_test_server *server = NULL;
    CHECK(pcp_test_server_start("127.0.0.1:0", &server) == PCP_OK, "test server starts");
    char addr[64];
    CHECK(pcp_test_server_address(server, addr, sizeof addr) == PCP_OK, "test server address");

    pcp_config *cfg = NULL;
    pcp_config_new(&cfg);
    pcp_config_set_listen_announce(cfg, false);
    pcp_config_set_deadline_ms(cfg, 3000);

    /* 1. The blocking client. */
    pcp_client *client = NULL;
    CHECK(pcp_client_new(addr, cfg, &client) == PCP_OK, "client connects");
    pcp_mapping *m = NULL;
    CHECK(pcp_map(client, PCP_PROTO_TCP, 8080, 8080, 600, &m) == PCP_OK, "TCP 8080 mapped");
    CHECK(pcp_mapping_external_port(m) != 0 && pcp_mapping_lifetime(m) > 0, "granted port and lifetime");
    CHECK(pcp_test_server_mapping_count(server) == 1, "the server holds the mapping");
    CHECK(pcp_mapping_delete(m) == PCP_OK, "mapping deleted");
    CHECK(pcp_test_server_mapping_count(server) == 0, "the server let it go");
    pcp_mapping_free(m);
    pcp_client_free(client);

    /* 2. The endpoint in our own select() loop. */
    pcp_endpoint *e = NULL;
    CHECK(pcp_endpoint_new(addr, cfg, &e) == PCP_OK, "endpoint made");
    state s = {0, 0, 0};
    pcp_endpoint_set_event_callback(e, on_event, &s);
    pcp_socket socks[PCP_ENDPOINT_MAX_FDS];
    size_t n = 0;
    CHECK(pcp_endpoint_fds(e, socks, PCP_ENDPOINT_MAX_FDS, &n) == PCP_OK && n >= 1, "endpoint sockets");
    CHECK(socks[0] != INVALID_SOCKET, "a valid SOCKET");
    pcp_map_request req;
    pcp_map_request_init(&req, PCP_PROTO_UDP, 5000);
    req.lifetime = 600;
    uint64_t id = 0;
    CHECK(pcp_endpoint_map(e, &req, &id) == PCP_OK, "endpoint MAP sent");
    DWORD start = GetTickCount();
    while (!s.granted && !s.failed && GetTickCount() - start < 5000) {
        fd_set readable;
        FD_ZERO(&readable);
        for (size_t i = 0; i < n; i++) FD_SET(socks[i], &readable);
        int ms = pcp_endpoint_timeout_ms(e);
        if (ms < 0 || ms > 200) ms = 200;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        select(0, &readable, NULL, NULL, &tv);
        pcp_endpoint_process(e);
    }
    CHECK(s.granted && s.external_port != 0, "UDP 5000 granted through select() on the SOCKET");
    pcp_endpoint_free(e);

    /* 3. Nobody there: an error at once. */
    char dead[64];
    /* A closed port the caller names (one closed on the host), else ours. */
    snprintf(dead, sizeof dead, "127.0.0.1:%u", argc > 1 ? (unsigned)atoi(argv[1]) : (unsigned)closed_port());
    pcp_config_set_deadline_ms(cfg, 6000);
    CHECK(pcp_client_new(dead, cfg, &client) == PCP_OK, "client for a closed port");
    start = GetTickCount();
    pcp_status st = pcp_map(client, PCP_PROTO_TCP, 8081, 0, 600, &m);
    DWORD took = GetTickCount() - start;
    printf("# closed port: %s after %lu ms\n", pcp_status_name(st), (unsigned long)took);
    CHECK(st == PCP_SERVER_UNREACHABLE && took < 4500, "a closed port fails as unreachable, not as a timeout");
    pcp_client_free(client);

    pcp_config_free(cfg);
    pcp_test_server_free(server);
    WSACleanup();
    printf("1..%d\n", checks);
    return 0;
}
