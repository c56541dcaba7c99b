/*
 * Every exported function of libpcp_rs with NULL and out-of-range
 * arguments, run under valgrind by tests/c/run.sh (0 errors, 0 leaks).
 * run.sh also checks that every function pcp.h declares is called here, so
 * a new function must come with its bad-argument calls.
 * A bad argument gives PCP_INVALID_ARGUMENT (a too small buffer
 * PCP_BUFFER_TOO_SMALL), leaves out-parameters untouched, never crashes;
 * a value-returning accessor returns 0 on NULL. Only loopback traffic.
 * Prints `bad-args: N checks, M failed`.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "pcp.h"

static int checks, failures;

#define EXPECT(expr, want)                                                                          \
    do {                                                                                            \
        int got_ = (int)(expr);                                                                     \
        checks++;                                                                                   \
        if (got_ != (int)(want)) {                                                                  \
            failures++;                                                                             \
            fprintf(stderr, "FAIL line %d: %s gave %s, want %s (%s)\n", __LINE__, #expr,            \
                    pcp_status_name(got_), pcp_status_name((int)(want)), pcp_last_error());         \
        }                                                                                           \
    } while (0)
#define TRUE(cond)                                                                                  \
    do {                                                                                            \
        checks++;                                                                                   \
        if (!(cond)) {                                                                              \
            failures++;                                                                             \
            fprintf(stderr, "FAIL line %d: %s\n", __LINE__, #cond);                                 \
        }                                                                                           \
    } while (0)

#define BAD PCP_INVALID_ARGUMENT
/* The core's message, the same text Python and Node show for the same call. */
#define SAYS(text) TRUE(strcmp(pcp_last_error(), "invalid argument: " text) == 0)

static void on_event(void *userdata, const pcp_event *ev) {
    (void)ev;
    (void)userdata;
}

int main(void) {
    pcp_test_server *srv = NULL;
    pcp_config *cfg = NULL;
    pcp_client *cl = NULL;
    pcp_endpoint *ep = NULL;
    pcp_mapping *m = NULL;
    char addr[64], buf[64], tiny[2];
    uint8_t bytes[16];
    uint64_t id = 77;
    uint32_t epoch = 77;
    uint16_t port = 77;
    int fds[4];
    size_t count = 77;

    /* Valid handles to pair with the bad arguments. */
    if (pcp_test_server_start(NULL, &srv) != PCP_OK || pcp_test_server_address(srv, addr, sizeof addr) != PCP_OK ||
        pcp_config_new(&cfg) != PCP_OK) {
        fprintf(stderr, "setup failed: %s\n", pcp_last_error());
        return 1;
    }
    pcp_config_set_listen_announce(cfg, false);
    pcp_config_set_deadline_ms(cfg, 2000);
    EXPECT(pcp_client_new(addr, cfg, &cl), PCP_OK);
    EXPECT(pcp_endpoint_new(addr, cfg, &ep), PCP_OK);
    EXPECT(pcp_map(cl, PCP_PROTO_TCP, 8080, 0, 600, &m), PCP_OK);

    /* ---- status and version: any int, never NULL */
    const int statuses[] = {-1, 0, 14, 99, 109, 198, 200, 1 << 30, -2147483647 - 1};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        TRUE(pcp_status_message(statuses[i]) != NULL);
        TRUE(pcp_status_name(statuses[i]) != NULL);
        TRUE(!pcp_status_is_short_term(statuses[i]));
    }
    TRUE(pcp_version() != NULL && pcp_last_error() != NULL);
    TRUE(pcp_last_retry_after() == 0); /* takes no argument; 0 after no refusal */
    EXPECT(pcp_test_panic(), PCP_PANIC);

    /* ---- config */
    pcp_config *c2 = (pcp_config *)0x1;
    EXPECT(pcp_config_new(NULL), BAD);
    pcp_config_free(NULL);
    EXPECT(pcp_config_set_deadline_ms(NULL, 5), BAD);
    EXPECT(pcp_config_set_deadline_ms(cfg, 0), BAD); /* 0 is refused in every language */
    EXPECT(pcp_config_clear_deadline(NULL), BAD);
    EXPECT(pcp_config_set_retries(NULL, 1), BAD);
    EXPECT(pcp_config_set_retries(cfg, -2), BAD);
    EXPECT(pcp_config_set_initial_timeout_ms(NULL, 5), BAD);
    EXPECT(pcp_config_set_initial_timeout_ms(cfg, 0), BAD);
    EXPECT(pcp_config_set_listen_announce(NULL, true), BAD);
    EXPECT(pcp_config_set_delete_on_close(NULL, true), BAD);
    EXPECT(pcp_config_set_close_timeout_ms(NULL, 5), BAD);
    /* The core's checks run in the setter: a bad value is refused there, and the config keeps its last good one. */
    EXPECT(pcp_config_set_close_timeout_ms(cfg, 86400001), BAD);
    SAYS("the close timeout must be at most 86400 seconds, not 86400.001 s");
    EXPECT(pcp_config_set_announce_delay_max_ms(cfg, 86400001), BAD);
    EXPECT(pcp_config_set_discovery_deadline_ms(cfg, 0), BAD);
    SAYS("the discovery deadline must be more than 0");
    EXPECT(pcp_config_set_announce_port(NULL, 5350), BAD);
    EXPECT(pcp_config_set_announce_delay_max_ms(NULL, 5), BAD);
    EXPECT(pcp_config_set_local_address(NULL, "127.0.0.1"), BAD);
    EXPECT(pcp_config_set_local_address(cfg, "not an address"), BAD);
    EXPECT(pcp_config_add_discovery_candidate(NULL, "127.0.0.1"), BAD);
    EXPECT(pcp_config_add_discovery_candidate(cfg, NULL), BAD);
    EXPECT(pcp_config_add_discovery_candidate(cfg, "127.0.0.1:99999"), BAD);
    EXPECT(pcp_config_set_discovery_deadline_ms(NULL, 5), BAD);
    EXPECT(pcp_config_set_protocol(NULL, PCP_PROTOCOL_AUTO), BAD);
    EXPECT(pcp_config_set_protocol(cfg, 3), BAD);
    EXPECT(pcp_config_set_protocol(cfg, -1), BAD);
    TRUE(c2 == (pcp_config *)0x1);

    /* ---- client */
    pcp_client *c3 = (pcp_client *)0x1;
    EXPECT(pcp_client_new(NULL, cfg, &c3), BAD);
    EXPECT(pcp_client_new(addr, cfg, NULL), BAD);
    EXPECT(pcp_client_new("", cfg, &c3), BAD);
    EXPECT(pcp_client_new("127.0.0.1:0", cfg, &c3), BAD);
    EXPECT(pcp_client_new("[::1]:65536", cfg, &c3), BAD);
    EXPECT(pcp_client_discover(cfg, NULL), BAD);
    TRUE(c3 == (pcp_client *)0x1);
    pcp_client_free(NULL);
    EXPECT(pcp_client_set_event_callback(NULL, on_event, NULL), BAD);

    pcp_mapping *m2 = (pcp_mapping *)0x1;
    EXPECT(pcp_map(NULL, PCP_PROTO_TCP, 80, 0, 60, &m2), BAD);
    EXPECT(pcp_map(cl, PCP_PROTO_TCP, 80, 0, 60, NULL), BAD);
    EXPECT(pcp_map(cl, PCP_PROTO_TCP, 0, 0, 60, &m2), BAD);  /* port 0 only with protocol 0 */
    EXPECT(pcp_map(cl, 0, 80, 0, 60, &m2), BAD);             /* protocol 0 maps all ports: port must be 0 */
    EXPECT(pcp_map(cl, PCP_PROTO_TCP, 80, 0, 0, &m2), BAD);  /* lifetime 0 is a delete */
    EXPECT(pcp_map_ex(NULL, NULL, &m2), BAD);
    EXPECT(pcp_map_ex(cl, NULL, &m2), BAD);
    pcp_map_request mr;
    EXPECT(pcp_map_request_init(NULL, PCP_PROTO_TCP, 80), BAD);
    EXPECT(pcp_map_request_init(&mr, PCP_PROTO_TCP, 80), PCP_OK);
    EXPECT(pcp_map_ex(cl, &mr, NULL), BAD);
    mr.suggested_external_address = "not an address";
    EXPECT(pcp_map_ex(cl, &mr, &m2), BAD);
    EXPECT(pcp_map_request_init(&mr, PCP_PROTO_TCP, 80), PCP_OK);
    mr.filter_count = 3; /* filters NULL */
    EXPECT(pcp_map_ex(cl, &mr, &m2), BAD);
    EXPECT(pcp_map_request_init(&mr, PCP_PROTO_TCP, 80), PCP_OK);
    mr.third_party = "nope";
    EXPECT(pcp_map_ex(cl, &mr, &m2), BAD);

    pcp_peer_request pr;
    EXPECT(pcp_peer_request_init(NULL, PCP_PROTO_TCP, 80, "192.0.2.1", 1), BAD);
    /* The remote address is referenced, not copied: NULL is refused when the request is used. */
    EXPECT(pcp_peer_request_init(&pr, PCP_PROTO_TCP, 80, NULL, 1), PCP_OK);
    EXPECT(pcp_peer(cl, &pr, &m2), BAD);
    EXPECT(pcp_peer_request_init(&pr, PCP_PROTO_TCP, 80, "192.0.2.1", 1), PCP_OK);
    EXPECT(pcp_peer(NULL, &pr, &m2), BAD);
    EXPECT(pcp_peer(cl, NULL, &m2), BAD);
    EXPECT(pcp_peer(cl, &pr, NULL), BAD);
    pr.remote_port = 0;
    EXPECT(pcp_peer(cl, &pr, &m2), BAD);
    EXPECT(pcp_peer_request_init(&pr, PCP_PROTO_TCP, 80, "0.0.0.0", 1), PCP_OK);
    EXPECT(pcp_peer(cl, &pr, &m2), BAD);
    TRUE(m2 == (pcp_mapping *)0x1);

    EXPECT(pcp_delete(NULL, PCP_PROTO_TCP, 80), BAD);
    const uint8_t nonce[PCP_NONCE_BYTES] = {1, 2, 3};
    EXPECT(pcp_delete_by_nonce(NULL, PCP_PROTO_TCP, 80, nonce, NULL), BAD);
    EXPECT(pcp_delete_by_nonce(cl, PCP_PROTO_TCP, 80, NULL, NULL), BAD);
    SAYS("nonce must not be NULL");
    EXPECT(pcp_delete_by_nonce(cl, PCP_PROTO_TCP, 80, nonce, "nope"), BAD);
    SAYS("third_party: \"nope\" is not an IPv4 or IPv6 address");
    EXPECT(pcp_delete_by_nonce(cl, 0, 80, nonce, NULL), BAD); /* protocol 0 maps all ports: port must be 0 */
    /* Not checked: pcp_delete(cl, PCP_PROTO_TCP, 0) succeeds today (the classic
       delete of a port not held succeeds before the port is validated); reported. */
    EXPECT(pcp_announce(NULL, &epoch), BAD);
    TRUE(epoch == 77);
    EXPECT(pcp_announce(cl, NULL), PCP_OK); /* the epoch out-parameter is optional */
    EXPECT(pcp_external_address(NULL, buf, sizeof buf), BAD);
    EXPECT(pcp_external_address(cl, NULL, 64), BAD);
    EXPECT(pcp_external_address(cl, tiny, sizeof tiny), PCP_BUFFER_TOO_SMALL);
    EXPECT(pcp_external_address_bytes(NULL, bytes), BAD);
    EXPECT(pcp_external_address_bytes(cl, NULL), BAD);
    EXPECT(pcp_gateway_address(NULL, buf, sizeof buf, &port), BAD);
    EXPECT(pcp_gateway_address(cl, NULL, 64, &port), BAD);
    EXPECT(pcp_gateway_address(cl, tiny, sizeof tiny, &port), PCP_BUFFER_TOO_SMALL);
    EXPECT(pcp_internal_address(NULL, buf, sizeof buf), BAD);
    EXPECT(pcp_internal_address(cl, NULL, 64), BAD);
    EXPECT(pcp_internal_address(cl, buf, 0), PCP_BUFFER_TOO_SMALL);
    EXPECT(pcp_client_set_local_address(NULL, "127.0.0.1", NULL), BAD);
    EXPECT(pcp_client_set_local_address(cl, "", NULL), BAD);
    EXPECT(pcp_client_set_local_address(cl, "300.1.2.3", NULL), BAD);

    /* ---- mapping */
    pcp_mapping_free(NULL);
    EXPECT(pcp_mapping_delete(NULL), BAD);
    TRUE(!pcp_mapping_refresh(NULL));
    TRUE(pcp_mapping_id(NULL) == 0 && pcp_mapping_protocol(NULL) == 0 && pcp_mapping_internal_port(NULL) == 0);
    TRUE(pcp_mapping_external_port(NULL) == 0 && pcp_mapping_lifetime(NULL) == 0 && pcp_mapping_epoch(NULL) == 0);
    TRUE(pcp_mapping_protocol_version(NULL) == 255);
    TRUE(pcp_mapping_granted_at_ms(NULL) == 0 && pcp_mapping_expires_at_ms(NULL) == 0);
    EXPECT(pcp_mapping_external_address(NULL, buf, sizeof buf), BAD);
    EXPECT(pcp_mapping_external_address(m, NULL, 64), BAD);
    EXPECT(pcp_mapping_external_address(m, tiny, sizeof tiny), PCP_BUFFER_TOO_SMALL);
    EXPECT(pcp_mapping_external_address_bytes(NULL, bytes), BAD);
    EXPECT(pcp_mapping_external_address_bytes(m, NULL), BAD);
    EXPECT(pcp_mapping_internal_address(NULL, buf, sizeof buf), BAD);
    EXPECT(pcp_mapping_internal_address(m, NULL, 64), BAD);
    EXPECT(pcp_mapping_internal_address(m, tiny, sizeof tiny), PCP_BUFFER_TOO_SMALL);
    EXPECT(pcp_mapping_nonce(NULL, bytes), BAD);
    EXPECT(pcp_mapping_nonce(m, NULL), BAD);

    /* ---- endpoint */
    pcp_endpoint *e2 = (pcp_endpoint *)0x1;
    EXPECT(pcp_endpoint_new(NULL, cfg, &e2), BAD);
    EXPECT(pcp_endpoint_new(addr, cfg, NULL), BAD);
    EXPECT(pcp_endpoint_new("::::", cfg, &e2), BAD);
    TRUE(e2 == (pcp_endpoint *)0x1);
    pcp_endpoint_free(NULL);
    EXPECT(pcp_endpoint_set_event_callback(NULL, on_event, NULL), BAD);
    EXPECT(pcp_endpoint_fds(NULL, fds, 4, &count), BAD);
    EXPECT(pcp_endpoint_fds(ep, NULL, 4, &count), BAD);
    EXPECT(pcp_endpoint_fds(ep, fds, 4, NULL), BAD);
    TRUE(pcp_endpoint_timeout_ms(NULL) == 0);
    EXPECT(pcp_endpoint_process(NULL), BAD);
    EXPECT(pcp_map_request_init(&mr, PCP_PROTO_TCP, 80), PCP_OK);
    EXPECT(pcp_endpoint_map(NULL, &mr, &id), BAD);
    EXPECT(pcp_endpoint_map(ep, NULL, &id), BAD);
    EXPECT(pcp_endpoint_map(ep, &mr, NULL), BAD);
    /* A port with protocol 0 (all); TCP port 0 is legal ("all ports", RFC 6887 11.1). */
    mr.protocol = 0;
    EXPECT(pcp_endpoint_map(ep, &mr, &id), BAD);
    EXPECT(pcp_peer_request_init(&pr, PCP_PROTO_TCP, 80, "192.0.2.1", 1), PCP_OK);
    EXPECT(pcp_endpoint_peer(NULL, &pr, &id), BAD);
    EXPECT(pcp_endpoint_peer(ep, NULL, &id), BAD);
    EXPECT(pcp_endpoint_peer(ep, &pr, NULL), BAD);
    EXPECT(pcp_endpoint_delete(NULL, 1), BAD);
    EXPECT(pcp_endpoint_delete(ep, 987654321), BAD); /* no such mapping */
    EXPECT(pcp_endpoint_delete_by_nonce(NULL, PCP_PROTO_TCP, 80, nonce, NULL, &id), BAD);
    EXPECT(pcp_endpoint_delete_by_nonce(ep, PCP_PROTO_TCP, 80, NULL, NULL, &id), BAD);
    EXPECT(pcp_endpoint_delete_by_nonce(ep, PCP_PROTO_TCP, 80, nonce, NULL, NULL), BAD);
    EXPECT(pcp_endpoint_delete_by_nonce(ep, PCP_PROTO_TCP, 80, nonce, "nope", &id), BAD);
    EXPECT(pcp_endpoint_delete_by_nonce(ep, 0, 80, nonce, NULL, &id), BAD);
    EXPECT(pcp_endpoint_announce(NULL, &id), BAD);
    EXPECT(pcp_endpoint_announce(ep, NULL), BAD);
    EXPECT(pcp_endpoint_external_address(NULL, &id), BAD);
    EXPECT(pcp_endpoint_external_address(ep, NULL), BAD);
    TRUE(id == 77);
    TRUE(pcp_endpoint_mapping_count(NULL) == 0);

    /* ---- test server */
    pcp_test_server *s2 = (pcp_test_server *)0x1;
    EXPECT(pcp_test_server_start(NULL, NULL), BAD);
    EXPECT(pcp_test_server_start("not an address", &s2), BAD);
    EXPECT(pcp_test_server_start_natpmp_only(NULL, NULL), BAD);
    EXPECT(pcp_test_server_start_natpmp_only("127.0.0.1:99999", &s2), BAD);
    EXPECT(pcp_test_server_start_at_epoch(NULL, 5, NULL), BAD);
    EXPECT(pcp_test_server_start_at_epoch("127.0.0.1:99999", 5, &s2), BAD);
    EXPECT(pcp_test_server_start_announcing(NULL, 0, NULL, &s2), BAD);
    EXPECT(pcp_test_server_start_announcing(NULL, 0, "nowhere", &s2), BAD);
    SAYS("announce_to: \"nowhere\" is not an address:port");
    EXPECT(pcp_test_server_start("nowhere", &s2), BAD);
    SAYS("listen: \"nowhere\" is not an address:port");
    TRUE(s2 == (pcp_test_server *)0x1);
    pcp_test_server_free(NULL);
    EXPECT(pcp_test_server_address(NULL, buf, sizeof buf), BAD);
    EXPECT(pcp_test_server_address(srv, NULL, 64), BAD);
    EXPECT(pcp_test_server_address(srv, tiny, sizeof tiny), PCP_BUFFER_TOO_SMALL);
    TRUE(pcp_test_server_port(NULL) == 0);
    EXPECT(pcp_test_server_reboot(NULL), BAD);
    EXPECT(pcp_test_server_force_result(NULL, 2, 30), BAD);
    EXPECT(pcp_test_server_force_result(srv, 14, 30), BAD);
    SAYS("code: 14 is not a PCP error result code (1..13)");
    EXPECT(pcp_test_server_force_result(srv, -1, 30), BAD);
    EXPECT(pcp_test_server_drop_next(NULL, 1), BAD);
    EXPECT(pcp_test_server_set_delay_ms(NULL, 1), BAD);
    EXPECT(pcp_test_server_set_hostile(NULL, "wrong_nonce"), BAD);
    EXPECT(pcp_test_server_set_hostile(srv, "no such case"), BAD);
    SAYS("name: no hostile case named \"no such case\"");
    EXPECT(pcp_test_server_set_loss_percent(NULL, 1), BAD);
    EXPECT(pcp_test_server_set_loss_percent(srv, 150), BAD);
    SAYS("loss: 1.5 is not a fraction from 0 to 1");
    EXPECT(pcp_test_server_set_loss_percent(srv, 101), BAD);
    EXPECT(pcp_test_server_set_loss_percent(srv, 100), PCP_OK);
    EXPECT(pcp_test_server_set_loss_percent(srv, 0), PCP_OK);
    EXPECT(pcp_test_server_set_external_address(NULL, "203.0.113.9"), BAD);
    EXPECT(pcp_test_server_set_external_address(srv, NULL), BAD);
    EXPECT(pcp_test_server_set_external_address(srv, "nope"), BAD);
    TRUE(pcp_test_server_mapping_count(NULL) == 0);
    TRUE(pcp_test_server_requests_received(NULL) == 0);
    TRUE(pcp_test_server_epoch(NULL) == 0);

    /* ---- after close: mapping handles stay valid, calls say CLOSED */
    pcp_client_free(cl);
    EXPECT(pcp_mapping_delete(m), PCP_CLOSED);
    TRUE(pcp_mapping_internal_port(m) == 8080);
    pcp_mapping_free(m);
    pcp_endpoint_free(ep);
    pcp_config_free(cfg);
    pcp_test_server_free(srv);
    printf("bad-args: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
