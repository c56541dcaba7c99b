/*
 * C tests of libpcp_rs against the library's own test server on loopback.
 * Build: cc -std=c99 -Wall -Wextra -Werror test_pcp.c $(pkg-config --cflags --libs pcp_rs) -lpthread
 * Every wait is bounded; no test sleeps to check timing.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pcp.h"

static int g_failed_checks;
static int g_skipped; /* set by a test that could not run here */
static const char *g_test;

#define SKIP(why)                                                                    \
    do {                                                                             \
        fprintf(stderr, "  SKIP %s: %s\n", g_test, (why));                           \
        g_skipped = 1;                                                               \
    } while (0)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "  FAIL %s:%d in %s: %s (last error: %s)\n", __FILE__,   \
                    __LINE__, g_test, #cond, pcp_last_error());                      \
            g_failed_checks++;                                                       \
        }                                                                            \
    } while (0)

#define CHECK_STATUS(expr, want)                                                     \
    do {                                                                             \
        pcp_status got_ = (expr);                                                    \
        if (got_ != (want)) {                                                        \
            fprintf(stderr, "  FAIL %s:%d in %s: %s gave %s, want %s (last error: %s)\n", \
                    __FILE__, __LINE__, g_test, #expr, pcp_status_name(got_),         \
                    pcp_status_name(want), pcp_last_error());                        \
            g_failed_checks++;                                                       \
        }                                                                            \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, PCP_OK)

/* ---------------------------------------------------------------- helpers */

#define MAX_KIND 12

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int counts[MAX_KIND];
    pcp_event last[MAX_KIND];
    char last_message[MAX_KIND][256];
} recorder;

static void recorder_init(recorder *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void recorder_destroy(recorder *r) {
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

static void on_event(void *userdata, const pcp_event *ev) {
    recorder *r = (recorder *)userdata;
    int k = (int)ev->kind;
    if (k <= 0 || k >= MAX_KIND) return;
    pthread_mutex_lock(&r->lock);
    r->counts[k]++;
    r->last[k] = *ev;
    r->last[k].message = NULL; /* only valid during the call */
    snprintf(r->last_message[k], sizeof r->last_message[k], "%s", ev->message ? ev->message : "");
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Waits (at most timeout_ms) until `kind` has been seen `n` times. */
static int wait_for(recorder *r, pcp_event_kind kind, int n, int timeout_ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    while (r->counts[kind] < n && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&r->cond, &r->lock, &deadline);
    int ok = r->counts[kind] >= n;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

typedef struct {
    pcp_test_server *server;
    char addr[64];
} fixture_server;

static int start_server(fixture_server *f) {
    f->server = NULL;
    if (pcp_test_server_start(NULL, &f->server) != PCP_OK) return 0;
    return pcp_test_server_address(f->server, f->addr, sizeof f->addr) == PCP_OK;
}

/* A config for tests: no ANNOUNCE listener on 5350, short deadlines. */
static pcp_config *test_config(uint32_t deadline_ms) {
    pcp_config *cfg = NULL;
    if (pcp_config_new(&cfg) != PCP_OK) return NULL;
    pcp_config_set_listen_announce(cfg, false);
    pcp_config_set_deadline_ms(cfg, deadline_ms);
    pcp_config_set_close_timeout_ms(cfg, 2000);
    pcp_config_set_announce_delay_max_ms(cfg, 0);
    return cfg;
}

static pcp_client *new_client(const char *server, uint32_t deadline_ms) {
    pcp_config *cfg = test_config(deadline_ms);
    pcp_client *c = NULL;
    pcp_status st = pcp_client_new(server, cfg, &c);
    pcp_config_free(cfg);
    if (st != PCP_OK) {
        fprintf(stderr, "  pcp_client_new(%s): %s: %s\n", server, pcp_status_name(st), pcp_last_error());
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------- tests */

static void test_status_messages(void) {
    static const int all[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 100, 101, 102, 103, 104, 105, 106, 107, 108, 199};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(pcp_status_message(all[i]) != NULL);
        CHECK(strlen(pcp_status_message(all[i])) > 0);
        CHECK(strcmp(pcp_status_name(all[i]), "UNKNOWN") != 0);
        CHECK(strcmp(pcp_status_message(all[i]), "unknown status") != 0);
    }
    CHECK(strcmp(pcp_status_message(12345), "unknown status") == 0);
    CHECK(strcmp(pcp_status_name(PCP_NOT_AUTHORIZED), "NOT_AUTHORIZED") == 0);
    CHECK(strcmp(pcp_status_name(PCP_TIMEOUT), "TIMEOUT") == 0);
    CHECK(strlen(pcp_version()) > 0);
    CHECK(pcp_last_error() != NULL);
}

static void test_null_arguments(void) {
    pcp_client *c = (pcp_client *)0x1; /* must stay untouched */
    pcp_mapping *m = (pcp_mapping *)0x1;
    char buf[PCP_ADDRSTRLEN];
    uint8_t bytes[16];
    uint32_t epoch = 77;

    CHECK_STATUS(pcp_client_new(NULL, NULL, &c), PCP_INVALID_ARGUMENT);
    CHECK(c == (pcp_client *)0x1);
    CHECK(strstr(pcp_last_error(), "NULL") != NULL);
    CHECK_STATUS(pcp_client_new("127.0.0.1", NULL, NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_client_discover(NULL, NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_map(NULL, PCP_PROTO_TCP, 80, 0, 60, &m), PCP_INVALID_ARGUMENT);
    CHECK(m == (pcp_mapping *)0x1);
    CHECK_STATUS(pcp_map_ex(NULL, NULL, &m), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_peer(NULL, NULL, &m), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_delete(NULL, PCP_PROTO_TCP, 80), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_announce(NULL, &epoch), PCP_INVALID_ARGUMENT);
    CHECK(epoch == 77);
    CHECK_STATUS(pcp_external_address(NULL, buf, sizeof buf), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_external_address_bytes(NULL, bytes), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_gateway_address(NULL, buf, sizeof buf, NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_internal_address(NULL, buf, sizeof buf), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_client_set_event_callback(NULL, on_event, NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_mapping_delete(NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_mapping_external_address(NULL, buf, sizeof buf), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_mapping_external_address_bytes(NULL, bytes), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_mapping_nonce(NULL, bytes), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_mapping_internal_address(NULL, buf, sizeof buf), PCP_INVALID_ARGUMENT);
    CHECK(pcp_mapping_external_port(NULL) == 0);
    CHECK(pcp_mapping_internal_port(NULL) == 0);
    CHECK(pcp_mapping_lifetime(NULL) == 0);
    CHECK(pcp_mapping_epoch(NULL) == 0);
    CHECK(pcp_mapping_protocol(NULL) == 0);
    CHECK(pcp_mapping_id(NULL) == 0);
    CHECK(!pcp_mapping_refresh(NULL));
    CHECK_STATUS(pcp_config_new(NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_config_set_deadline_ms(NULL, 5), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_config_set_retries(NULL, 1), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_config_set_listen_announce(NULL, false), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_config_add_discovery_candidate(NULL, "127.0.0.1"), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_map_request_init(NULL, PCP_PROTO_TCP, 1), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_peer_request_init(NULL, PCP_PROTO_TCP, 1, "192.0.2.1", 1), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_endpoint_new(NULL, NULL, NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_endpoint_process(NULL), PCP_INVALID_ARGUMENT);
    /* 0, not -1: poll() would take -1 as "forever". */
    CHECK(pcp_endpoint_timeout_ms(NULL) == 0);
    CHECK(strstr(pcp_last_error(), "NULL") != NULL);
    CHECK_STATUS(pcp_config_set_announce_port(NULL, 0), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_test_server_start_announcing(NULL, 0, NULL, NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_test_server_start(NULL, NULL), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_test_server_reboot(NULL), PCP_INVALID_ARGUMENT);
    /* Every _free accepts NULL. */
    pcp_client_free(NULL);
    pcp_mapping_free(NULL);
    pcp_config_free(NULL);
    pcp_endpoint_free(NULL);
    pcp_test_server_free(NULL);
}

static void test_invalid_arguments(void) {
    pcp_client *c = NULL;
    pcp_config *cfg = NULL;
    CHECK_STATUS(pcp_client_new("", NULL, &c), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_client_new("127.0.0.1:0", NULL, &c), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_client_new("[::1]:99999", NULL, &c), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_client_new("0.0.0.0", NULL, &c), PCP_INVALID_ARGUMENT);
    CHECK(c == NULL);
    CHECK_OK(pcp_config_new(&cfg));
    CHECK_STATUS(pcp_config_set_retries(cfg, -5), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_config_set_local_address(cfg, "not-an-ip"), PCP_INVALID_ARGUMENT);
    CHECK_STATUS(pcp_config_set_initial_timeout_ms(cfg, 0), PCP_INVALID_ARGUMENT);
    CHECK_OK(pcp_config_set_retries(cfg, 3));
    CHECK_OK(pcp_config_set_local_address(cfg, "127.0.0.1"));
    /* A zero deadline: refused, as in every language (the core's rule). */
    CHECK_STATUS(pcp_config_set_deadline_ms(cfg, 0), PCP_INVALID_ARGUMENT);
    CHECK(strcmp(pcp_last_error(), "invalid argument: the request deadline must be more than 0") == 0);
    CHECK_OK(pcp_config_clear_deadline(cfg));
    CHECK_OK(pcp_config_set_deadline_ms(cfg, 1));
    /* Every argument message has the same prefix. */
    CHECK_STATUS(pcp_config_set_retries(cfg, -5), PCP_INVALID_ARGUMENT);
    CHECK(strncmp(pcp_last_error(), "invalid argument: ", 18) == 0);
    CHECK_STATUS(pcp_config_set_local_address(NULL, "127.0.0.1"), PCP_INVALID_ARGUMENT);
    CHECK(strncmp(pcp_last_error(), "invalid argument: ", 18) == 0);
    pcp_config_free(cfg);

    fixture_server f;
    CHECK(start_server(&f));
    c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (c) {
        pcp_mapping *m = NULL;
        CHECK_STATUS(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 0, &m), PCP_INVALID_ARGUMENT); /* lifetime 0 */
        /* Was "port 0 with TCP", which RFC 6887 section 11.1 allows (all
         * ports); a port with protocol 0 (all protocols) is what is invalid. */
        CHECK_STATUS(pcp_map(c, 0, 80, 0, 60, &m), PCP_INVALID_ARGUMENT);
        pcp_map_request req;
        CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_TCP, 8080));
        req.prefer_failure = true; /* without a suggested port */
        CHECK_STATUS(pcp_map_ex(c, &req, &m), PCP_INVALID_ARGUMENT);
        req.prefer_failure = false;
        req.suggested_external_address = "999.1.1.1";
        CHECK_STATUS(pcp_map_ex(c, &req, &m), PCP_INVALID_ARGUMENT);
        req.suggested_external_address = NULL;
        req.filter_count = 1; /* filters NULL */
        CHECK_STATUS(pcp_map_ex(c, &req, &m), PCP_INVALID_ARGUMENT);
        pcp_peer_request preq;
        CHECK_OK(pcp_peer_request_init(&preq, PCP_PROTO_TCP, 8080, "198.51.100.1", 0)); /* remote port 0 */
        CHECK_STATUS(pcp_peer(c, &preq, &m), PCP_INVALID_ARGUMENT);
        CHECK(m == NULL);
        CHECK_OK(pcp_delete(c, PCP_PROTO_TCP, 4242)); /* holds none: nothing to do (the core's rule) */
        pcp_client_free(c);
    }
    pcp_test_server_free(f.server);
}

/* The shared classic-API table (tests/classic/cases.txt), as the Rust,
 * Python and Node suites run it: pcp_map / pcp_delete with a fresh client
 * per case. */
static void run_classic_case(const char *name, char *steps) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    unsigned char nonces[16][PCP_NONCE_BYTES];
    int nonce_port[16];
    int nonce_count = 0;
    char *save = NULL;
    for (char *step = strtok_r(steps, ";", &save); c && step; step = strtok_r(NULL, ";", &save)) {
        char op[32], expect[64];
        unsigned port = 0, external = 0, life = 0, n = 0;
        if (sscanf(step, " map %u %u %u %63s", &port, &external, &life, expect) == 4) {
            pcp_mapping *m = NULL;
            pcp_status st = pcp_map(c, PCP_PROTO_TCP, (uint16_t)port, (uint16_t)external, life, &m);
            int is_new = strcmp(expect, "new") == 0, is_same = strcmp(expect, "same") == 0;
            if (!is_new && !is_same) {
                if (strcmp(pcp_status_name(st), expect) != 0) {
                    fprintf(stderr, "  FAIL case %s: %s gave %s\n", name, step, pcp_status_name(st));
                    g_failed_checks++;
                }
                continue;
            }
            if (st != PCP_OK) {
                fprintf(stderr, "  FAIL case %s: %s gave %s: %s\n", name, step, pcp_status_name(st), pcp_last_error());
                g_failed_checks++;
                continue;
            }
            unsigned char nonce[PCP_NONCE_BYTES];
            CHECK_OK(pcp_mapping_nonce(m, nonce));
            int i = 0;
            while (i < nonce_count && nonce_port[i] != (int)port) i++;
            int same = i < nonce_count && memcmp(nonces[i], nonce, PCP_NONCE_BYTES) == 0;
            if (same != is_same) {
                fprintf(stderr, "  FAIL case %s: %s: nonce %s\n", name, step, same ? "kept" : "changed");
                g_failed_checks++;
            }
            if (i == nonce_count && nonce_count < 16) nonce_port[nonce_count++] = (int)port;
            if (i < 16) memcpy(nonces[i], nonce, PCP_NONCE_BYTES);
            if (external && is_new) CHECK(pcp_mapping_external_port(m) == external);
            pcp_mapping_free(m);
        } else if (sscanf(step, " delete %u %63s", &port, expect) == 2) {
            pcp_status st = pcp_delete(c, PCP_PROTO_TCP, (uint16_t)port);
            const char *got = st == PCP_OK ? "ok" : pcp_status_name(st);
            if (strcmp(got, expect) != 0) {
                fprintf(stderr, "  FAIL case %s: %s gave %s\n", name, step, got);
                g_failed_checks++;
            }
        } else if (sscanf(step, " server_mappings %u", &n) == 1) {
            if (pcp_test_server_mapping_count(f.server) != n) {
                fprintf(stderr, "  FAIL case %s: %s: the server holds %zu\n", name, step,
                        pcp_test_server_mapping_count(f.server));
                g_failed_checks++;
            }
        } else if (sscanf(step, " refuse %63s", expect) == 1) {
            /* An RFC name, as pcp_status_name gives the result codes 1..13. */
            int code = 0;
            for (int i = 1; i <= 13 && strcmp(expect, "none") != 0; i++) {
                if (strcmp(pcp_status_name(i), expect) == 0) code = i;
            }
            CHECK_OK(pcp_test_server_force_result(f.server, code, 0));
        } else if (sscanf(step, " %31s", op) == 1) {
            fprintf(stderr, "  FAIL case %s: unknown step %s\n", name, step);
            g_failed_checks++;
        }
    }
    pcp_client_free(c);
    pcp_test_server_free(f.server);
}

static void test_classic_cases(void) {
    const char *path = getenv("PCP_CLASSIC_CASES");
    FILE *in = fopen(path ? path : "tests/classic/cases.txt", "r");
    CHECK(in != NULL);
    if (!in) return;
    char line[1024];
    int cases = 0;
    while (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\r\n")] = 0;
        char *colon = strchr(line, ':');
        if (line[0] == '#' || line[0] == 0 || !colon) continue;
        *colon = 0;
        run_classic_case(line, colon + 1);
        cases++;
    }
    fclose(in);
    CHECK(cases >= 10);
}

static void test_map_and_accessors(void) {
    fixture_server f;
    CHECK_OK(pcp_test_server_start_at_epoch(NULL, 1000, &f.server));
    CHECK_OK(pcp_test_server_address(f.server, f.addr, sizeof f.addr));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    pcp_mapping *m = NULL;
    int64_t before_ms = (int64_t)time(NULL) * 1000;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 3600, &m));
    int64_t after_ms = ((int64_t)time(NULL) + 1) * 1000;
    CHECK(m != NULL);
    if (m) {
        char buf[PCP_ADDRSTRLEN];
        /* Times come from the core: the same on every read and refresh. */
        int64_t granted = pcp_mapping_granted_at_ms(m), expires = pcp_mapping_expires_at_ms(m);
        CHECK(granted >= before_ms - 1000 && granted <= after_ms + 1000);
        CHECK(expires - granted == 3600 * 1000);
        CHECK(pcp_mapping_granted_at_ms(m) == granted && pcp_mapping_expires_at_ms(m) == expires);
        CHECK(pcp_mapping_refresh(m));
        CHECK(pcp_mapping_granted_at_ms(m) == granted && pcp_mapping_expires_at_ms(m) == expires);
        CHECK(pcp_mapping_granted_at_ms(NULL) == 0 && pcp_mapping_expires_at_ms(NULL) == 0);
        CHECK(pcp_mapping_protocol(m) == PCP_PROTO_TCP);
        CHECK(pcp_mapping_protocol_version(m) == PCP_VERSION_PCP);
        CHECK(pcp_mapping_protocol_version(NULL) == 255);
        CHECK(pcp_mapping_internal_port(m) == 8080);
        CHECK(pcp_mapping_external_port(m) != 0);
        CHECK(pcp_mapping_lifetime(m) == 3600);
        CHECK(pcp_mapping_id(m) != 0); /* ids start at 1 */
        /* The epoch of the answer: at least the server's start, at most its now. */
        CHECK(pcp_mapping_epoch(m) >= 1000);
        CHECK(pcp_mapping_epoch(m) <= pcp_test_server_epoch(f.server));
        CHECK_OK(pcp_mapping_external_address(m, buf, sizeof buf));
        CHECK(strcmp(buf, "203.0.113.7") == 0);
        CHECK_OK(pcp_mapping_internal_address(m, buf, sizeof buf));
        CHECK(strcmp(buf, "127.0.0.1") == 0);
        uint8_t bytes[16];
        static const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7};
        CHECK_OK(pcp_mapping_external_address_bytes(m, bytes));
        CHECK(memcmp(bytes, want, 16) == 0);
        uint8_t nonce[PCP_NONCE_BYTES];
        static const uint8_t zero[PCP_NONCE_BYTES] = {0};
        CHECK_OK(pcp_mapping_nonce(m, nonce));
        CHECK(memcmp(nonce, zero, sizeof nonce) != 0);
        /* Too-small buffer: error, buffer untouched. */
        char small[8];
        memset(small, 'x', sizeof small);
        CHECK_STATUS(pcp_mapping_external_address(m, small, sizeof small), PCP_BUFFER_TOO_SMALL);
        CHECK(small[0] == 'x' && small[7] == 'x');
        CHECK(strstr(pcp_last_error(), "12") != NULL); /* says how much it needs */
        CHECK_STATUS(pcp_mapping_external_address(m, NULL, 64), PCP_INVALID_ARGUMENT);
        CHECK(pcp_test_server_mapping_count(f.server) == 1);
        CHECK(pcp_mapping_refresh(m));
        CHECK_OK(pcp_mapping_delete(m));
        CHECK(pcp_test_server_mapping_count(f.server) == 0);
        CHECK(!pcp_mapping_refresh(m));
        pcp_mapping_free(m);
    }
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
}

static void test_map_options(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    pcp_map_request req;
    pcp_mapping *m = NULL;
    pcp_filter filters[2] = {{"198.51.100.0", 24, 0}, {"192.0.2.5", 32, 443}};

    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_UDP, 5000));
    CHECK(req.lifetime == 3600 && req.suggested_external_port == 0);
    req.suggested_external_port = 40000;
    req.suggested_external_address = "203.0.113.7";
    req.prefer_failure = true;
    req.lifetime = 600;
    req.filters = filters;
    req.filter_count = 2;
    CHECK_OK(pcp_map_ex(c, &req, &m));
    if (m) {
        CHECK(pcp_mapping_external_port(m) == 40000);
        CHECK(pcp_mapping_protocol(m) == PCP_PROTO_UDP);
        CHECK(pcp_mapping_lifetime(m) == 600);
        pcp_mapping_free(m);
        m = NULL;
    }
    /* PREFER_FAILURE on a port that is taken: CANNOT_PROVIDE_EXTERNAL. */
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_UDP, 5001));
    req.suggested_external_port = 40000;
    req.prefer_failure = true;
    CHECK_STATUS(pcp_map_ex(c, &req, &m), PCP_CANNOT_PROVIDE_EXTERNAL);
    CHECK(m == NULL);

    /* THIRD_PARTY: the mapping is for another internal address. */
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_TCP, 22));
    req.third_party = "127.0.0.2";
    CHECK_OK(pcp_map_ex(c, &req, &m));
    if (m) {
        char buf[PCP_ADDRSTRLEN];
        CHECK_OK(pcp_mapping_internal_address(m, buf, sizeof buf));
        CHECK(strcmp(buf, "127.0.0.2") == 0);
        pcp_mapping_free(m);
    }
    CHECK(pcp_test_server_mapping_count(f.server) == 2);
    pcp_client_free(c);
    CHECK(pcp_test_server_mapping_count(f.server) == 0); /* deleted on close */
out:
    pcp_test_server_free(f.server);
}

static void test_peer_and_delete(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    pcp_peer_request req;
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_peer_request_init(&req, PCP_PROTO_TCP, 6000, "198.51.100.20", 443));
    req.lifetime = 120;
    CHECK_OK(pcp_peer(c, &req, &m));
    if (m) {
        char buf[PCP_ADDRSTRLEN];
        CHECK(pcp_mapping_internal_port(m) == 6000);
        CHECK(pcp_mapping_external_port(m) != 0);
        CHECK(pcp_mapping_lifetime(m) == 120);
        CHECK_OK(pcp_mapping_external_address(m, buf, sizeof buf));
        CHECK(strcmp(buf, "203.0.113.7") == 0);
        CHECK(pcp_test_server_mapping_count(f.server) == 1);
        CHECK_OK(pcp_mapping_delete(m));
        CHECK(pcp_test_server_mapping_count(f.server) == 0);
        /* Gone already: deleting it again succeeds and sends nothing, as in every language. */
        uint64_t received = pcp_test_server_requests_received(f.server);
        CHECK_OK(pcp_mapping_delete(m));
        CHECK(pcp_test_server_requests_received(f.server) == received);
        pcp_mapping_free(m);
    }
    /* The classic delete by protocol and port. */
    m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 7000, 0, 300, &m));
    pcp_mapping_free(m); /* freeing the handle keeps the mapping */
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    CHECK_OK(pcp_delete(c, PCP_PROTO_TCP, 7000));
    CHECK(pcp_test_server_mapping_count(f.server) == 0);
    CHECK_OK(pcp_delete(c, PCP_PROTO_TCP, 7000)); /* holds none any more: nothing to do */
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
}

static void test_addresses_and_announce(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    char buf[PCP_ADDRSTRLEN];
    uint16_t port = 0;
    uint32_t epoch = 0xffffffffu;
    uint8_t bytes[16];
    CHECK_OK(pcp_announce(c, &epoch));
    CHECK(epoch != 0xffffffffu);
    CHECK_OK(pcp_announce(c, NULL));
    CHECK_OK(pcp_external_address(c, buf, sizeof buf));
    CHECK(strcmp(buf, "203.0.113.7") == 0);
    CHECK_OK(pcp_external_address_bytes(c, bytes));
    CHECK(bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 203 && bytes[15] == 7);
    char small[4] = "abc";
    CHECK_STATUS(pcp_external_address(c, small, sizeof small), PCP_BUFFER_TOO_SMALL);
    CHECK(strcmp(small, "abc") == 0);
    CHECK_OK(pcp_gateway_address(c, buf, sizeof buf, &port));
    CHECK(strcmp(buf, "127.0.0.1") == 0);
    CHECK(port == pcp_test_server_port(f.server));
    CHECK_STATUS(pcp_gateway_address(c, small, 2, &port), PCP_BUFFER_TOO_SMALL);
    CHECK_OK(pcp_internal_address(c, buf, sizeof buf));
    CHECK(strcmp(buf, "127.0.0.1") == 0);
    pcp_client_free(c);
    /* The address probe is deleted (at the latest when the client closes). */
    CHECK(pcp_test_server_mapping_count(f.server) == 0);
out:
    pcp_test_server_free(f.server);
}

static void test_ipv6_server(void) {
    pcp_test_server *s = NULL;
    pcp_status st = pcp_test_server_start("[::1]:0", &s);
    if (st != PCP_OK) {
        char why[300];
        snprintf(why, sizeof why, "no IPv6 loopback here (%s)", pcp_last_error());
        SKIP(why);
        return;
    }
    char addr[64];
    CHECK_OK(pcp_test_server_address(s, addr, sizeof addr));
    CHECK(addr[0] == '[');
    pcp_client *c = new_client(addr, 3000);
    CHECK(c != NULL);
    if (c) {
        char buf[PCP_ADDRSTRLEN];
        CHECK_OK(pcp_gateway_address(c, buf, sizeof buf, NULL));
        CHECK(strcmp(buf, "::1") == 0);
        pcp_mapping *m = NULL;
        CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8081, 0, 60, &m));
        pcp_mapping_free(m);
        pcp_client_free(c);
    }
    pcp_test_server_free(s);
}

static void test_every_result_code(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    for (int code = 1; code <= 13; code++) {
        pcp_mapping *m = NULL;
        /* Lifetime 0: after NO_RESOURCES with a lifetime the client rightly
         * sends no new mapping request for that long (RFC 6887 8.3). */
        CHECK_OK(pcp_test_server_force_result(f.server, code, 0));
        pcp_status st = pcp_map(c, PCP_PROTO_TCP, (uint16_t)(9000 + code), 0, 60, &m);
        if ((int)st != code) {
            fprintf(stderr, "  FAIL result code %d gave %s (%s)\n", code, pcp_status_name(st), pcp_last_error());
            g_failed_checks++;
        }
        CHECK(m == NULL);
        CHECK(strlen(pcp_last_error()) > 0);
        /* RFC 6887 section 7.4: the short-term ones, as Python and Node say. */
        CHECK(pcp_status_is_short_term(code) ==
              (code == PCP_NETWORK_FAILURE || code == PCP_NO_RESOURCES || code == PCP_USER_EX_QUOTA));
    }
    CHECK(!pcp_status_is_short_term(PCP_OK) && !pcp_status_is_short_term(PCP_TIMEOUT) && !pcp_status_is_short_term(-1));
    CHECK_STATUS(pcp_test_server_force_result(f.server, 99, 0), PCP_INVALID_ARGUMENT);
    CHECK_OK(pcp_test_server_force_result(f.server, 0, 0));
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 9100, 0, 60, &m));
    pcp_mapping_free(m);
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
}

static void test_timeout(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_config *cfg = test_config(300);
    pcp_config_set_initial_timeout_ms(cfg, 100);
    pcp_client *c = NULL;
    CHECK_OK(pcp_client_new(f.addr, cfg, &c));
    pcp_config_free(cfg);
    if (!c) goto out;
    CHECK_OK(pcp_test_server_drop_next(f.server, 1000));
    pcp_mapping *m = NULL;
    CHECK_STATUS(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m), PCP_TIMEOUT);
    CHECK(m == NULL);
    CHECK_STATUS(pcp_announce(c, NULL), PCP_TIMEOUT);
    CHECK_OK(pcp_test_server_drop_next(f.server, 0));
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
}

/* A lost request is retransmitted: the first one is dropped, so only a
 * retransmission can be answered. */
static void test_retransmission(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_config *cfg = test_config(10000);
    CHECK_OK(pcp_config_set_initial_timeout_ms(cfg, 50));
    pcp_client *c = NULL;
    CHECK_OK(pcp_client_new(f.addr, cfg, &c));
    pcp_config_free(cfg);
    if (!c) goto out;
    uint64_t before = pcp_test_server_requests_received(f.server);
    CHECK_OK(pcp_test_server_drop_next(f.server, 1));
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m));
    CHECK(pcp_test_server_requests_received(f.server) - before >= 2);
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    pcp_mapping_free(m);
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
}

/* With retries = N and a deadline far away, a silent server gets exactly
 * N + 1 requests (the first and N retransmissions), then PCP_TIMEOUT. */
static void test_retry_count(void) {
    enum { RETRIES = 3 };
    fixture_server f;
    CHECK(start_server(&f));
    pcp_config *cfg = test_config(600000);
    CHECK_OK(pcp_config_set_initial_timeout_ms(cfg, 20));
    CHECK_OK(pcp_config_set_retries(cfg, RETRIES));
    pcp_client *c = NULL;
    CHECK_OK(pcp_client_new(f.addr, cfg, &c));
    pcp_config_free(cfg);
    if (!c) goto out;
    uint64_t before = pcp_test_server_requests_received(f.server);
    CHECK_OK(pcp_test_server_drop_next(f.server, 1000000));
    pcp_mapping *m = NULL;
    CHECK_STATUS(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m), PCP_TIMEOUT);
    CHECK(m == NULL);
    /* The last retransmission may still be on its way to the server. */
    for (int i = 0; i < 500 && pcp_test_server_requests_received(f.server) - before < RETRIES + 1; i++) {
        struct timespec ten_ms = {0, 10000000L};
        nanosleep(&ten_ms, NULL);
    }
    uint64_t sent = pcp_test_server_requests_received(f.server) - before;
    if (sent != RETRIES + 1) {
        fprintf(stderr, "  FAIL retries=%d: the server got %llu requests, want %d\n", RETRIES,
                (unsigned long long)sent, RETRIES + 1);
        g_failed_checks++;
    }
    CHECK_OK(pcp_test_server_drop_next(f.server, 0));
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
}

static void test_server_unreachable(void) {
    fixture_server f;
    CHECK(start_server(&f));
    char addr[64];
    memcpy(addr, f.addr, sizeof addr);
    pcp_test_server_free(f.server); /* nothing listens on the port now */
    pcp_client *c = new_client(addr, 5000);
    CHECK(c != NULL);
    if (!c) return;
    pcp_mapping *m = NULL;
    CHECK_STATUS(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m), PCP_SERVER_UNREACHABLE);
    CHECK(m == NULL);
    pcp_client_free(c);
}

static void test_discovery(void) {
    fixture_server f, dead;
    CHECK(start_server(&f));
    CHECK(start_server(&dead));
    char dead_addr[64];
    memcpy(dead_addr, dead.addr, sizeof dead_addr);
    pcp_test_server_free(dead.server);

    pcp_config *cfg = test_config(3000);
    CHECK_OK(pcp_config_add_discovery_candidate(cfg, dead_addr));
    CHECK_OK(pcp_config_set_discovery_deadline_ms(cfg, 500));
    pcp_client *c = NULL;
    CHECK_STATUS(pcp_client_discover(cfg, &c), PCP_NO_GATEWAY);
    CHECK(c == NULL);
    CHECK_OK(pcp_config_add_discovery_candidate(cfg, f.addr));
    CHECK_OK(pcp_client_discover(cfg, &c));
    pcp_config_free(cfg);
    if (c) {
        char buf[PCP_ADDRSTRLEN];
        uint16_t port = 0;
        CHECK_OK(pcp_gateway_address(c, buf, sizeof buf, &port));
        CHECK(port == pcp_test_server_port(f.server));
        pcp_client_free(c);
    }
    pcp_test_server_free(f.server);
}

static void test_callback_renew(void) {
    fixture_server f;
    recorder r;
    recorder_init(&r);
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    CHECK_OK(pcp_client_set_event_callback(c, on_event, &r));
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 2, &m)); /* renewed after about 1 s */
    CHECK(wait_for(&r, PCP_EVENT_GRANTED, 1, 10000));
    CHECK(wait_for(&r, PCP_EVENT_RENEWED, 1, 10000));
    pthread_mutex_lock(&r.lock);
    pcp_event ev = r.last[PCP_EVENT_RENEWED];
    pthread_mutex_unlock(&r.lock);
    CHECK(ev.id == pcp_mapping_id(m));
    CHECK(ev.status == PCP_OK && ev.message == NULL);
    CHECK(ev.internal_port == 8080 && ev.protocol == PCP_PROTO_TCP);
    CHECK(ev.external_port == pcp_mapping_external_port(m));
    CHECK(strcmp(ev.external_address_text, "203.0.113.7") == 0);
    CHECK(ev.external_address[10] == 0xff && ev.external_address[12] == 203);
    uint8_t nonce[PCP_NONCE_BYTES];
    CHECK_OK(pcp_mapping_nonce(m, nonce));
    CHECK(memcmp(nonce, ev.nonce, sizeof nonce) == 0); /* the renewal reuses the nonce */
    int64_t granted = pcp_mapping_granted_at_ms(m);
    CHECK(pcp_mapping_refresh(m));
    /* The renewal is a new grant: later, and the expiry follows it. */
    CHECK(pcp_mapping_granted_at_ms(m) > granted);
    CHECK(pcp_mapping_expires_at_ms(m) - pcp_mapping_granted_at_ms(m) == (int64_t)pcp_mapping_lifetime(m) * 1000);
    /* Removing the callback: no more calls after the client is freed. */
    CHECK_OK(pcp_client_set_event_callback(c, NULL, NULL));
    pcp_mapping_free(m);
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
    recorder_destroy(&r);
}

static void test_callback_reboot(void) {
    fixture_server f;
    recorder r;
    recorder_init(&r);
    /* A server up for 1000 s: its reboot is a clear jump back of the epoch. */
    CHECK_OK(pcp_test_server_start_at_epoch(NULL, 1000, &f.server));
    CHECK_OK(pcp_test_server_address(f.server, f.addr, sizeof f.addr));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    CHECK_OK(pcp_client_set_event_callback(c, on_event, &r));
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_UDP, 5353, 0, 3600, &m));
    CHECK(pcp_test_server_epoch(f.server) >= 1000);
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    CHECK_OK(pcp_test_server_reboot(f.server));
    /* (No server-side count here: the client may already be recreating.) */
    CHECK(wait_for(&r, PCP_EVENT_SERVER_RESTARTED, 1, 10000));
    CHECK(wait_for(&r, PCP_EVENT_RENEWED, 1, 10000));
    pthread_mutex_lock(&r.lock);
    pcp_event restarted = r.last[PCP_EVENT_SERVER_RESTARTED];
    pcp_event renewed = r.last[PCP_EVENT_RENEWED];
    pthread_mutex_unlock(&r.lock);
    CHECK(restarted.epoch < 1000); /* the epoch went back */
    CHECK(renewed.id == pcp_mapping_id(m));
    CHECK(renewed.epoch < 1000); /* recreated on the rebooted server */
    CHECK(pcp_test_server_mapping_count(f.server) == 1); /* recreated */
    /* The external address changes: reported with old and new. */
    CHECK_OK(pcp_test_server_set_external_address(f.server, "203.0.113.99"));
    CHECK(wait_for(&r, PCP_EVENT_EXTERNAL_ADDRESS_CHANGED, 1, 10000));
    pthread_mutex_lock(&r.lock);
    pcp_event ev = r.last[PCP_EVENT_EXTERNAL_ADDRESS_CHANGED];
    pthread_mutex_unlock(&r.lock);
    CHECK(strcmp(ev.old_address_text, "203.0.113.7") == 0);
    CHECK(strcmp(ev.external_address_text, "203.0.113.99") == 0);
    CHECK(ev.old_address[15] == 7 && ev.external_address[15] == 99);
    pcp_mapping_free(m);
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
    recorder_destroy(&r);
}

/* RFC 6887 section 11.5: our own address changes (here on loopback, by
 * naming 127.0.0.2): the event says old and new, and the mapping is made
 * again from the new address. */
static void test_callback_internal_address_changed(void) {
    fixture_server f;
    recorder r;
    recorder_init(&r);
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    CHECK_OK(pcp_client_set_event_callback(c, on_event, &r));
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8086, 0, 600, &m));
    char buf[PCP_ADDRSTRLEN];
    CHECK_OK(pcp_mapping_internal_address(m, buf, sizeof buf));
    CHECK(strcmp(buf, "127.0.0.1") == 0);
    bool changed = true;
    CHECK_OK(pcp_client_set_local_address(c, "127.0.0.1", &changed));
    CHECK(!changed);
    CHECK_OK(pcp_client_set_local_address(c, "127.0.0.2", &changed));
    CHECK(changed);
    CHECK(wait_for(&r, PCP_EVENT_INTERNAL_ADDRESS_CHANGED, 1, 10000));
    CHECK(wait_for(&r, PCP_EVENT_RENEWED, 1, 10000));
    pthread_mutex_lock(&r.lock);
    pcp_event ev = r.last[PCP_EVENT_INTERNAL_ADDRESS_CHANGED];
    pcp_event renewed = r.last[PCP_EVENT_RENEWED];
    pthread_mutex_unlock(&r.lock);
    CHECK(strcmp(ev.old_address_text, "127.0.0.1") == 0);
    CHECK(strcmp(ev.internal_address_text, "127.0.0.2") == 0);
    CHECK(ev.old_address[15] == 1 && ev.internal_address[15] == 2);
    CHECK(renewed.id == pcp_mapping_id(m));
    CHECK(pcp_mapping_refresh(m));
    CHECK_OK(pcp_mapping_internal_address(m, buf, sizeof buf));
    CHECK(strcmp(buf, "127.0.0.2") == 0);
    CHECK_OK(pcp_internal_address(c, buf, sizeof buf));
    CHECK(strcmp(buf, "127.0.0.2") == 0);
    CHECK(pcp_test_server_mapping_count(f.server) >= 1);
    /* NULL: back to the route's choice. */
    CHECK_OK(pcp_client_set_local_address(c, NULL, NULL));
    CHECK(wait_for(&r, PCP_EVENT_INTERNAL_ADDRESS_CHANGED, 2, 10000));
    CHECK_OK(pcp_internal_address(c, buf, sizeof buf));
    CHECK(strcmp(buf, "127.0.0.1") == 0);
    CHECK_STATUS(pcp_client_set_local_address(c, "not an address", NULL), PCP_INVALID_ARGUMENT);
    pcp_mapping_free(m);
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
    recorder_destroy(&r);
}

static void test_callback_failed_and_lost(void) {
    fixture_server f;
    recorder r;
    recorder_init(&r);
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    CHECK_OK(pcp_client_set_event_callback(c, on_event, &r));
    CHECK_OK(pcp_test_server_force_result(f.server, PCP_NOT_AUTHORIZED, 30));
    pcp_mapping *m = NULL;
    CHECK_STATUS(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m), PCP_NOT_AUTHORIZED);
    CHECK(wait_for(&r, PCP_EVENT_FAILED, 1, 10000));
    pthread_mutex_lock(&r.lock);
    CHECK(r.last[PCP_EVENT_FAILED].status == PCP_NOT_AUTHORIZED);
    CHECK(strstr(r.last_message[PCP_EVENT_FAILED], "NOT_AUTHORIZED") != NULL);
    CHECK(r.last[PCP_EVENT_FAILED].retry_after == 30);
    pthread_mutex_unlock(&r.lock);
    CHECK(pcp_last_retry_after() == 30);
    /* The same request within the error's lifetime fails at once, locally
     * (RFC 6887 section 8.3), with the seconds left. */
    CHECK_OK(pcp_test_server_force_result(f.server, 0, 0));
    CHECK_STATUS(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m), PCP_NOT_AUTHORIZED);
    CHECK(pcp_last_retry_after() > 0 && pcp_last_retry_after() <= 30);
    CHECK(pcp_test_server_mapping_count(f.server) == 0);
    /* A mapping whose renewals are refused until it expires is lost. */
    CHECK_OK(pcp_test_server_force_result(f.server, 0, 0));
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8081, 0, 2, &m));
    CHECK_OK(pcp_test_server_force_result(f.server, PCP_NOT_AUTHORIZED, 1));
    CHECK(wait_for(&r, PCP_EVENT_LOST, 1, 15000));
    pthread_mutex_lock(&r.lock);
    CHECK(r.last[PCP_EVENT_LOST].id == pcp_mapping_id(m));
    CHECK(r.last[PCP_EVENT_LOST].status != PCP_OK);
    pthread_mutex_unlock(&r.lock);
    CHECK(!pcp_mapping_refresh(m));
    pcp_mapping_free(m);
    CHECK_OK(pcp_test_server_force_result(f.server, 0, 0));
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
    recorder_destroy(&r);
}

/* The callback may call the client, blocking requests included. */
typedef struct {
    pcp_client *client;
    int announced;
    pcp_status announce_status;
    pcp_status address_status;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} reentrant;

static void on_event_reentrant(void *userdata, const pcp_event *ev) {
    reentrant *r = (reentrant *)userdata;
    if (ev->kind != PCP_EVENT_GRANTED) return;
    uint32_t epoch = 0;
    char buf[PCP_ADDRSTRLEN];
    pcp_status st = pcp_announce(r->client, &epoch);
    pcp_status st2 = pcp_internal_address(r->client, buf, sizeof buf);
    pthread_mutex_lock(&r->lock);
    r->announce_status = st;
    r->address_status = st2;
    r->announced = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void test_callback_calls_client(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    reentrant r = {c, 0, PCP_OK, PCP_OK, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    CHECK_OK(pcp_client_set_event_callback(c, on_event_reentrant, &r));
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m));
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&r.lock);
    int rc = 0;
    while (r.announced == 0 && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&r.cond, &r.lock, &deadline);
    pthread_mutex_unlock(&r.lock);
    CHECK(r.announced == 1);
    CHECK(r.announce_status == PCP_OK);
    CHECK(r.address_status == PCP_OK);
    pcp_mapping_free(m);
    pcp_client_free(c);
    pthread_mutex_destroy(&r.lock);
    pthread_cond_destroy(&r.cond);
out:
    pcp_test_server_free(f.server);
}

#define THREADS 4
#define PER_THREAD 25

typedef struct {
    pcp_client *client;
    int base;
    int ok;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = (worker_arg *)p;
    for (int i = 0; i < PER_THREAD; i++) {
        pcp_mapping *m = NULL;
        if (pcp_map(a->client, PCP_PROTO_TCP, (uint16_t)(a->base + i), 0, 600, &m) == PCP_OK) {
            char buf[PCP_ADDRSTRLEN];
            if (pcp_mapping_external_address(m, buf, sizeof buf) == PCP_OK) a->ok++;
            pcp_mapping_free(m);
        }
    }
    return NULL;
}

static void test_threads(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 5000);
    CHECK(c != NULL);
    if (!c) goto out;
    pthread_t t[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i].client = c;
        args[i].base = 20000 + i * 100;
        args[i].ok = 0;
        pthread_create(&t[i], NULL, worker, &args[i]);
    }
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += args[i].ok;
    }
    CHECK(total == THREADS * PER_THREAD);
    CHECK(pcp_test_server_mapping_count(f.server) == THREADS * PER_THREAD);
    pcp_client_free(c);
    CHECK(pcp_test_server_mapping_count(f.server) == 0);
out:
    pcp_test_server_free(f.server);
}

static void test_keep_on_close(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_config *cfg = test_config(3000);
    CHECK_OK(pcp_config_set_delete_on_close(cfg, false));
    pcp_client *c = NULL;
    CHECK_OK(pcp_client_new(f.addr, cfg, &c));
    pcp_config_free(cfg);
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m));
    pcp_client_free(c);
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    /* The handle outlives its client: fields still readable, delete says closed. */
    CHECK(pcp_mapping_internal_port(m) == 8080);
    CHECK_STATUS(pcp_mapping_delete(m), PCP_CLOSED);
    pcp_mapping_free(m);
    pcp_test_server_free(f.server);
}

static void test_panic_boundary(void) {
    CHECK_STATUS(pcp_test_panic(), PCP_PANIC);
    CHECK(strstr(pcp_last_error(), "panic") != NULL);
}

/* ---------------------------------------------------------------- poll loop */

typedef struct {
    int granted, failed, deleted, announced, external, renewed, restarted;
    uint64_t granted_id, renewed_id, deleted_id;
    uint32_t restarted_epoch;
    uint16_t external_port;
    char external_text[PCP_ADDRSTRLEN];
    pcp_status last_status;
} loop_state;

static void on_loop_event(void *userdata, const pcp_event *ev) {
    loop_state *s = (loop_state *)userdata;
    switch (ev->kind) {
    case PCP_EVENT_GRANTED:
        s->granted++;
        s->granted_id = ev->id;
        s->external_port = ev->external_port;
        break;
    case PCP_EVENT_RENEWED:
        s->renewed++;
        s->renewed_id = ev->id;
        break;
    case PCP_EVENT_SERVER_RESTARTED:
        s->restarted++;
        s->restarted_epoch = ev->epoch;
        break;
    case PCP_EVENT_FAILED: s->failed++; s->last_status = ev->status; break;
    case PCP_EVENT_DELETED: s->deleted++; s->deleted_id = ev->id; s->last_status = ev->status; break;
    case PCP_EVENT_ANNOUNCED: s->announced++; s->last_status = ev->status; break;
    case PCP_EVENT_EXTERNAL_ADDRESS:
        s->external++;
        memcpy(s->external_text, ev->external_address_text, PCP_ADDRSTRLEN);
        break;
    default: break;
    }
}

/* Runs the loop until *counter reaches want (at most 400 rounds of at most 50 ms). */
static int run_loop(pcp_endpoint *e, int *counter, int want) {
    int fds[PCP_ENDPOINT_MAX_FDS];
    size_t n = 0;
    if (pcp_endpoint_fds(e, fds, PCP_ENDPOINT_MAX_FDS, &n) != PCP_OK) return 0;
    for (int round = 0; round < 400 && *counter < want; round++) {
        struct pollfd p[PCP_ENDPOINT_MAX_FDS];
        for (size_t i = 0; i < n; i++) {
            p[i].fd = fds[i];
            p[i].events = POLLIN;
            p[i].revents = 0;
        }
        int timeout = pcp_endpoint_timeout_ms(e);
        if (timeout < 0 || timeout > 50) timeout = 50;
        poll(p, (nfds_t)n, timeout);
        if (pcp_endpoint_process(e) != PCP_OK) return 0;
    }
    return *counter >= want;
}

static void test_poll_loop(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_config *cfg = test_config(3000);
    pcp_endpoint *e = NULL;
    CHECK_OK(pcp_endpoint_new(f.addr, cfg, &e));
    pcp_config_free(cfg);
    if (!e) goto out;
    loop_state s;
    memset(&s, 0, sizeof s);
    CHECK_OK(pcp_endpoint_set_event_callback(e, on_loop_event, &s));
    int fds[PCP_ENDPOINT_MAX_FDS];
    size_t n = 0;
    CHECK_OK(pcp_endpoint_fds(e, fds, PCP_ENDPOINT_MAX_FDS, &n));
    CHECK(n == 1); /* no ANNOUNCE listener in tests */
    CHECK(fds[0] >= 0);
    CHECK_STATUS(pcp_endpoint_fds(e, fds, 0, &n), PCP_BUFFER_TOO_SMALL);
    CHECK(pcp_endpoint_timeout_ms(e) == -1); /* idle: nothing to wait for */

    pcp_map_request req;
    uint64_t id = 0;
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_TCP, 8080));
    req.lifetime = 2;
    CHECK_OK(pcp_endpoint_map(e, &req, &id));
    CHECK(pcp_endpoint_timeout_ms(e) >= 0); /* a retransmission is scheduled */
    CHECK(run_loop(e, &s.granted, 1));
    CHECK(s.granted_id == id);
    CHECK(s.external_port != 0);
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    CHECK(pcp_endpoint_mapping_count(e) == 1);
    CHECK(pcp_endpoint_timeout_ms(e) > 0); /* the renewal */
    /* Renewals happen inside process. */
    CHECK(run_loop(e, &s.renewed, 1));

    uint64_t rid = 0;
    CHECK_OK(pcp_endpoint_announce(e, &rid));
    CHECK(run_loop(e, &s.announced, 1));
    CHECK(s.last_status == PCP_OK);
    CHECK_OK(pcp_endpoint_external_address(e, &rid));
    CHECK(run_loop(e, &s.external, 1));
    CHECK(strcmp(s.external_text, "203.0.113.7") == 0);

    pcp_peer_request preq;
    uint64_t pid = 0;
    CHECK_OK(pcp_peer_request_init(&preq, PCP_PROTO_UDP, 9000, "198.51.100.3", 53));
    CHECK_OK(pcp_endpoint_peer(e, &preq, &pid));
    CHECK(run_loop(e, &s.granted, 2));

    CHECK_OK(pcp_endpoint_delete(e, id));
    CHECK_OK(pcp_endpoint_delete(e, pid));
    CHECK(run_loop(e, &s.deleted, 2));
    CHECK(s.last_status == PCP_OK);
    CHECK(pcp_test_server_mapping_count(f.server) == 0);
    CHECK_STATUS(pcp_endpoint_delete(e, 424242), PCP_INVALID_ARGUMENT);

    /* Errors arrive as FAILED events. */
    CHECK_OK(pcp_test_server_force_result(f.server, PCP_NO_RESOURCES, 30));
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_TCP, 8082));
    CHECK_OK(pcp_endpoint_map(e, &req, &id));
    CHECK(run_loop(e, &s.failed, 1));
    CHECK(s.last_status == PCP_NO_RESOURCES);
    pcp_endpoint_free(e);
out:
    pcp_test_server_free(f.server);
}

/* Deleting a mapping by its nonce from a client or endpoint that did not
 * make it (Python's delete_by_nonce, Node's deleteByNonce): a wrong nonce is
 * refused, and a THIRD_PARTY mapping is found only by a delete that names
 * the same third party (RFC 6887 section 13.1). */
static void test_delete_by_nonce(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_config *cfg = test_config(3000);
    pcp_config_set_delete_on_close(cfg, false);
    pcp_client *owner = NULL, *other = NULL, *stranger = NULL;
    pcp_endpoint *e = NULL;
    CHECK_OK(pcp_client_new(f.addr, cfg, &owner));
    CHECK_OK(pcp_client_new(f.addr, cfg, &other));
    CHECK_OK(pcp_client_new(f.addr, cfg, &stranger));
    CHECK_OK(pcp_endpoint_new(f.addr, cfg, &e));
    pcp_config_free(cfg);
    if (!owner || !other || !stranger || !e) goto out;
    uint8_t nonce[PCP_NONCE_BYTES], wrong[PCP_NONCE_BYTES];
    pcp_mapping *m = NULL;

    /* A mapping of our own address. */
    CHECK_OK(pcp_map(owner, PCP_PROTO_UDP, 7100, 0, 600, &m));
    CHECK_OK(pcp_mapping_nonce(m, nonce));
    pcp_mapping_free(m);
    memcpy(wrong, nonce, sizeof wrong);
    wrong[0] ^= 0xff;
    CHECK_STATUS(pcp_delete_by_nonce(stranger, PCP_PROTO_UDP, 7100, wrong, NULL), PCP_NOT_AUTHORIZED);
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    CHECK_OK(pcp_delete_by_nonce(other, PCP_PROTO_UDP, 7100, nonce, NULL));
    CHECK(pcp_test_server_mapping_count(f.server) == 0);

    /* A THIRD_PARTY mapping: without the option the delete names another mapping. */
    pcp_map_request req;
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_TCP, 7101));
    req.lifetime = 600;
    req.third_party = "192.0.2.50";
    m = NULL;
    CHECK_OK(pcp_map_ex(owner, &req, &m));
    CHECK_OK(pcp_mapping_nonce(m, nonce));
    pcp_mapping_free(m);
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    CHECK_OK(pcp_delete_by_nonce(other, PCP_PROTO_TCP, 7101, nonce, NULL));
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    CHECK_OK(pcp_delete_by_nonce(other, PCP_PROTO_TCP, 7101, nonce, "192.0.2.50"));
    CHECK(pcp_test_server_mapping_count(f.server) == 0);

    /* The endpoint's twin: the outcome is a DELETED event with the delete's id. */
    loop_state s;
    memset(&s, 0, sizeof s);
    CHECK_OK(pcp_endpoint_set_event_callback(e, on_loop_event, &s));
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_UDP, 7102));
    req.third_party = "192.0.2.51";
    m = NULL;
    CHECK_OK(pcp_map_ex(owner, &req, &m));
    CHECK_OK(pcp_mapping_nonce(m, nonce));
    pcp_mapping_free(m);
    uint64_t id = 0;
    CHECK_OK(pcp_endpoint_delete_by_nonce(e, PCP_PROTO_UDP, 7102, nonce, "192.0.2.51", &id));
    CHECK(id != 0);
    CHECK(run_loop(e, &s.deleted, 1));
    CHECK(s.deleted_id == id);
    CHECK(s.last_status == PCP_OK);
    CHECK(pcp_test_server_mapping_count(f.server) == 0);
out:
    pcp_endpoint_free(e);
    pcp_client_free(stranger);
    pcp_client_free(other);
    pcp_client_free(owner);
    pcp_test_server_free(f.server);
}

/* ---------------------------------------------------------------- more callbacks */

/* pcp_client_set_event_callback waits for a running call of the callback
 * it replaces: once it returns, the old userdata may be freed. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int entered, release, setter_started, setter_returned;
    int setter_returned_seen_by_callback;
    int calls;
} held_callback;

static int wait_flag(pthread_mutex_t *lock, pthread_cond_t *cond, const int *flag, int timeout_ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(lock);
    while (!*flag && rc != ETIMEDOUT) rc = pthread_cond_timedwait(cond, lock, &deadline);
    int ok = *flag;
    pthread_mutex_unlock(lock);
    return ok;
}

static void on_event_held(void *userdata, const pcp_event *ev) {
    held_callback *h = (held_callback *)userdata;
    (void)ev;
    pthread_mutex_lock(&h->lock);
    h->calls++;
    if (h->calls == 1) {
        h->entered = 1;
        pthread_cond_broadcast(&h->cond);
        pthread_mutex_unlock(&h->lock);
        wait_flag(&h->lock, &h->cond, &h->release, 20000);
        pthread_mutex_lock(&h->lock);
        /* Still inside the callback: the setter cannot have returned. */
        h->setter_returned_seen_by_callback = h->setter_returned;
    }
    pthread_mutex_unlock(&h->lock);
}

typedef struct {
    pcp_client *client;
    held_callback *h;
    pcp_status status;
} setter_arg;

static void *remove_callback(void *p) {
    setter_arg *a = (setter_arg *)p;
    pthread_mutex_lock(&a->h->lock);
    a->h->setter_started = 1;
    pthread_cond_broadcast(&a->h->cond);
    pthread_mutex_unlock(&a->h->lock);
    a->status = pcp_client_set_event_callback(a->client, NULL, NULL);
    pthread_mutex_lock(&a->h->lock);
    a->h->setter_returned = 1;
    pthread_cond_broadcast(&a->h->cond);
    pthread_mutex_unlock(&a->h->lock);
    return NULL;
}

static void test_callback_replace_waits(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    held_callback *h = calloc(1, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    CHECK_OK(pcp_client_set_event_callback(c, on_event_held, h));
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8080, 0, 60, &m)); /* GRANTED: the callback holds */
    CHECK(wait_flag(&h->lock, &h->cond, &h->entered, 10000));
    setter_arg a = {c, h, PCP_PANIC};
    pthread_t t;
    pthread_create(&t, NULL, remove_callback, &a);
    CHECK(wait_flag(&h->lock, &h->cond, &h->setter_started, 10000));
    pthread_mutex_lock(&h->lock);
    h->release = 1;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(t, NULL);
    CHECK(a.status == PCP_OK);
    CHECK(h->setter_returned_seen_by_callback == 0);
    CHECK(h->calls == 1);
    /* The old userdata is freed: valgrind reports any later use. */
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free(h);
    pcp_mapping *m2 = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8081, 0, 60, &m2)); /* an event with no callback */
    pcp_mapping_free(m2);
    pcp_mapping_free(m);
    pcp_client_free(c);
out:
    pcp_test_server_free(f.server);
}

/* An endpoint's callback may free the endpoint (valgrind checks that
 * nothing touches it afterwards and that it is released). */
typedef struct {
    pcp_endpoint *endpoint;
    int events_after_free;
    int freed;
} self_freeing;

static void on_event_free_endpoint(void *userdata, const pcp_event *ev) {
    self_freeing *s = (self_freeing *)userdata;
    if (s->freed) {
        s->events_after_free++;
        return;
    }
    if (ev->kind == PCP_EVENT_GRANTED) {
        pcp_endpoint_free(s->endpoint);
        s->freed = 1;
    }
}

static void test_endpoint_free_in_callback(void) {
    fixture_server f;
    CHECK(start_server(&f));
    pcp_config *cfg = test_config(3000);
    pcp_endpoint *e = NULL;
    CHECK_OK(pcp_endpoint_new(f.addr, cfg, &e));
    pcp_config_free(cfg);
    if (!e) goto out;
    self_freeing s = {e, 0, 0};
    CHECK_OK(pcp_endpoint_set_event_callback(e, on_event_free_endpoint, &s));
    int fds[PCP_ENDPOINT_MAX_FDS];
    size_t n = 0;
    CHECK_OK(pcp_endpoint_fds(e, fds, PCP_ENDPOINT_MAX_FDS, &n));
    pcp_map_request req;
    uint64_t id = 0;
    /* Two mappings: their answers may come in one process call. */
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_TCP, 8080));
    CHECK_OK(pcp_endpoint_map(e, &req, &id));
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_TCP, 8081));
    CHECK_OK(pcp_endpoint_map(e, &req, &id));
    for (int round = 0; round < 400 && !s.freed; round++) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int timeout = pcp_endpoint_timeout_ms(e);
        if (timeout < 0 || timeout > 50) timeout = 50;
        poll(&p, 1, timeout);
        CHECK_OK(pcp_endpoint_process(e));
    }
    CHECK(s.freed);
    CHECK(s.events_after_free == 0);
    if (!s.freed) pcp_endpoint_free(e);
out:
    pcp_test_server_free(f.server);
}

/* A UDP port on loopback that nobody uses right now (0 if none found). */
static uint16_t unused_udp_port(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static uint16_t local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* The ANNOUNCE listener (on an ephemeral port instead of 5350): the server
 * announces its reboot to that port only, not to the request socket, so
 * the endpoint hears it only through the listener, and recreates. */
static void test_announce_listener(void) {
    uint16_t listen_port = unused_udp_port();
    CHECK(listen_port != 0);
    char announce_to[32];
    snprintf(announce_to, sizeof announce_to, "127.0.0.1:%u", (unsigned)listen_port);
    fixture_server f;
    CHECK_OK(pcp_test_server_start_announcing(NULL, 1000, announce_to, &f.server));
    if (!f.server) return;
    CHECK_OK(pcp_test_server_address(f.server, f.addr, sizeof f.addr));
    pcp_config *cfg = test_config(3000);
    CHECK_OK(pcp_config_set_listen_announce(cfg, true));
    CHECK_OK(pcp_config_set_announce_port(cfg, listen_port));
    pcp_endpoint *e = NULL;
    CHECK_OK(pcp_endpoint_new(f.addr, cfg, &e));
    pcp_config_free(cfg);
    if (!e) goto out;
    int fds[PCP_ENDPOINT_MAX_FDS];
    size_t n = 0;
    CHECK_OK(pcp_endpoint_fds(e, fds, PCP_ENDPOINT_MAX_FDS, &n));
    CHECK(n == 2); /* the request socket and the listener */
    if (n != 2) {
        pcp_endpoint_free(e);
        goto out;
    }
    CHECK(local_port(fds[1]) == listen_port);
    loop_state s;
    memset(&s, 0, sizeof s);
    CHECK_OK(pcp_endpoint_set_event_callback(e, on_loop_event, &s));
    pcp_map_request req;
    uint64_t id = 0;
    CHECK_OK(pcp_map_request_init(&req, PCP_PROTO_UDP, 5353)); /* 3600 s: no renewal of its own */
    CHECK_OK(pcp_endpoint_map(e, &req, &id));
    CHECK(run_loop(e, &s.granted, 1));
    CHECK_OK(pcp_test_server_reboot(f.server));
    CHECK(run_loop(e, &s.restarted, 1));
    CHECK(s.restarted_epoch < 1000);
    CHECK(run_loop(e, &s.renewed, 1)); /* recreated at once (announce delay 0) */
    CHECK(s.renewed_id == id);
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    pcp_endpoint_free(e);
out:
    pcp_test_server_free(f.server);
}

/* ---------------------------------------------------------------- main */

/* A NAT-PMP-only gateway: the classic calls fall back by themselves. */
static void test_natpmp_only_gateway(void) {
    fixture_server f;
    recorder rec;
    recorder_init(&rec);
    CHECK_OK(pcp_test_server_start_natpmp_only(NULL, &f.server));
    CHECK_OK(pcp_test_server_address(f.server, f.addr, sizeof f.addr));
    pcp_client *c = new_client(f.addr, 3000);
    CHECK(c != NULL);
    if (!c) goto out;
    CHECK_OK(pcp_client_set_event_callback(c, on_event, &rec));
    pcp_mapping *m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8080, 8080, 3600, &m));
    CHECK(wait_for(&rec, PCP_EVENT_GRANTED, 1, 5000));
    pthread_mutex_lock(&rec.lock);
    CHECK(rec.last[PCP_EVENT_GRANTED].protocol_version == PCP_VERSION_NATPMP);
    pthread_mutex_unlock(&rec.lock);
    if (m) {
        char buf[PCP_ADDRSTRLEN];
        CHECK(pcp_mapping_protocol_version(m) == PCP_VERSION_NATPMP);
        CHECK(pcp_mapping_external_port(m) == 8080);
        CHECK(pcp_mapping_lifetime(m) == 3600);
        CHECK_OK(pcp_mapping_external_address(m, buf, sizeof buf));
        CHECK(strcmp(buf, "203.0.113.7") == 0);
        pcp_mapping_free(m);
    }
    m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_UDP, 9000, 0, 600, &m));
    pcp_mapping_free(m);
    CHECK(pcp_test_server_mapping_count(f.server) == 2);
    char ext[PCP_ADDRSTRLEN];
    CHECK_OK(pcp_external_address(c, ext, sizeof ext));
    CHECK(strcmp(ext, "203.0.113.7") == 0);
    CHECK_OK(pcp_delete(c, PCP_PROTO_TCP, 8080));
    CHECK(pcp_test_server_mapping_count(f.server) == 1);
    /* What NAT-PMP cannot do has its own status. */
    pcp_peer_request req;
    m = NULL;
    CHECK_OK(pcp_peer_request_init(&req, PCP_PROTO_TCP, 6000, "198.51.100.20", 443));
    CHECK_STATUS(pcp_peer(c, &req, &m), PCP_UNSUPPORTED_BY_NATPMP);
    CHECK(m == NULL);
    CHECK(strstr(pcp_last_error(), "PEER") != NULL);
    CHECK(strcmp(pcp_status_name(PCP_UNSUPPORTED_BY_NATPMP), "UNSUPPORTED_BY_NATPMP") == 0);
    pcp_client_free(c);
    CHECK(pcp_test_server_mapping_count(f.server) == 0);

    /* Forced to PCP, the same gateway says it speaks only version 0. */
    pcp_config *cfg = test_config(3000);
    CHECK_OK(pcp_config_set_protocol(cfg, PCP_PROTOCOL_PCP));
    CHECK_STATUS(pcp_config_set_protocol(cfg, 7), PCP_INVALID_ARGUMENT);
    c = NULL;
    CHECK_OK(pcp_client_new(f.addr, cfg, &c));
    m = NULL;
    CHECK_STATUS(pcp_map(c, PCP_PROTO_TCP, 8081, 0, 600, &m), PCP_UNSUPP_VERSION);
    pcp_client_free(c);
    /* Forced to NAT-PMP it maps straight away. */
    CHECK_OK(pcp_config_set_protocol(cfg, PCP_PROTOCOL_NATPMP));
    c = NULL;
    CHECK_OK(pcp_client_new(f.addr, cfg, &c));
    m = NULL;
    CHECK_OK(pcp_map(c, PCP_PROTO_TCP, 8082, 0, 600, &m));
    CHECK(m != NULL && pcp_mapping_protocol_version(m) == PCP_VERSION_NATPMP);
    pcp_mapping_free(m);
    pcp_client_free(c);
    pcp_config_free(cfg);
out:
    pcp_test_server_free(f.server);
    recorder_destroy(&rec);
}

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case TESTS[] = {
    {"status_messages", test_status_messages},
    {"null_arguments", test_null_arguments},
    {"invalid_arguments", test_invalid_arguments},
    {"classic_cases", test_classic_cases},
    {"map_and_accessors", test_map_and_accessors},
    {"map_options", test_map_options},
    {"peer_and_delete", test_peer_and_delete},
    {"addresses_and_announce", test_addresses_and_announce},
    {"ipv6_server", test_ipv6_server},
    {"every_result_code", test_every_result_code},
    {"timeout", test_timeout},
    {"retransmission", test_retransmission},
    {"retry_count", test_retry_count},
    {"server_unreachable", test_server_unreachable},
    {"discovery", test_discovery},
    {"callback_renew", test_callback_renew},
    {"callback_reboot", test_callback_reboot},
    {"callback_internal_address_changed", test_callback_internal_address_changed},
    {"callback_failed_and_lost", test_callback_failed_and_lost},
    {"callback_calls_client", test_callback_calls_client},
    {"threads", test_threads},
    {"keep_on_close", test_keep_on_close},
    {"panic_boundary", test_panic_boundary},
    {"poll_loop", test_poll_loop},
    {"delete_by_nonce", test_delete_by_nonce},
    {"callback_replace_waits", test_callback_replace_waits},
    {"endpoint_free_in_callback", test_endpoint_free_in_callback},
    {"announce_listener", test_announce_listener},
    {"natpmp_only_gateway", test_natpmp_only_gateway},
};

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        if (argc > 1 && strcmp(argv[1], TESTS[i].name) != 0) continue;
        g_test = TESTS[i].name;
        int before = g_failed_checks;
        g_skipped = 0;
        TESTS[i].fn();
        if (g_failed_checks == before && g_skipped) {
            skipped++;
            printf("skip %s\n", TESTS[i].name);
        } else if (g_failed_checks == before) {
            passed++;
            printf("ok   %s\n", TESTS[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", TESTS[i].name);
        }
        fflush(stdout);
    }
    if (skipped > 0)
        printf("c-tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("c-tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
