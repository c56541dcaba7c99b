/*
 * The hostile-answer table (tests/hostile/cases.json) against the C API:
 * the test server answers with each crafted case and pcp_map must end as
 * the table says. Run by tests/c/run.sh under valgrind, with the table's
 * path as the argument. The table keeps one case per line (checked by the
 * Rust suite), so a line scan is enough here: no JSON library.
 * Prints `hostile-c: N passed, M failed, K pending`; exits non-zero on a failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcp.h"

/* The string value of "key": "value" in line, into out (empty if absent). */
static void field(const char *line, const char *key, char *out, size_t len) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    out[0] = '\0';
    const char *p = strstr(line, pat);
    if (!p) return;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < len) n++;
    memcpy(out, p, n);
    out[n] = '\0';
}

static long number(const char *text, const char *key, long dflt) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(text, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : dflt;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/hostile/cases.json\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    uint32_t deadline_ms = (uint32_t)number(text, "deadline_ms", 600);
    char external_ip[64];
    field(text, "external_ip", external_ip, sizeof external_ip);

    int passed = 0, failed = 0, pending = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64], expect[16], error[64], pend[8], want[96];
        field(line, "case", name, sizeof name);
        if (!name[0]) continue;
        field(line, "expect", expect, sizeof expect);
        field(line, "error", error, sizeof error);
        field(line, "pending", pend, sizeof pend);
        if (strcmp(expect, "error") == 0)
            snprintf(want, sizeof want, "error %s", error);
        else
            snprintf(want, sizeof want, "%s", expect);
        if (pend[0]) {
            printf("PENDING %s: %s\n", name, want);
            pending++;
            continue;
        }
        pcp_test_server *server = NULL;
        pcp_client *client = NULL;
        pcp_config *cfg = NULL;
        char addr[64];
        if (pcp_test_server_start(NULL, &server) != PCP_OK ||
            pcp_test_server_address(server, addr, sizeof addr) != PCP_OK ||
            pcp_test_server_set_hostile(server, name) != PCP_OK || pcp_config_new(&cfg) != PCP_OK) {
            printf("FAILED  %s: setup: %s\n", name, pcp_last_error());
            failed++;
            pcp_config_free(cfg);
            pcp_test_server_free(server);
            continue;
        }
        pcp_config_set_listen_announce(cfg, false);
        pcp_config_set_deadline_ms(cfg, deadline_ms);
        pcp_status st = pcp_client_new(addr, cfg, &client);
        pcp_config_free(cfg);
        if (st != PCP_OK) {
            printf("FAILED  %s: pcp_client_new: %s\n", name, pcp_status_name(st));
            failed++;
            pcp_test_server_free(server);
            continue;
        }
        long requests = number(line, "requests", 1);
        /* "request": "prefer_failure": suggest the internal port, with PREFER_FAILURE. */
        char kind[32];
        field(line, "request", kind, sizeof kind);
        int prefer_failure = strcmp(kind, "prefer_failure") == 0;
        int ok = 1;
        char got[128] = "";
        for (long i = 0; i < requests; i++) {
            pcp_mapping *m = NULL;
            pcp_map_request req;
            pcp_map_request_init(&req, PCP_PROTO_TCP, (uint16_t)(7000 + i));
            if (prefer_failure) {
                req.suggested_external_port = (uint16_t)(7000 + i);
                req.prefer_failure = true;
            }
            st = pcp_map_ex(client, &req, &m);
            if (st == PCP_OK) {
                char ext[64];
                int right = pcp_mapping_external_address(m, ext, sizeof ext) == PCP_OK &&
                            strcmp(ext, external_ip) == 0 && pcp_mapping_external_port(m) != 0;
                snprintf(got, sizeof got, "%s", right ? "taken" : "taken with a wrong answer");
                pcp_mapping_free(m);
            } else if (st == PCP_TIMEOUT) {
                snprintf(got, sizeof got, "timeout");
            } else {
                snprintf(got, sizeof got, "error %s", pcp_status_name(st));
            }
            if (strcmp(got, want) != 0) ok = 0;
        }
        pcp_test_server_set_hostile(server, NULL);
        pcp_client_free(client);
        pcp_test_server_free(server);
        if (ok) {
            printf("ok      %s: %s\n", name, want);
            passed++;
        } else {
            printf("FAILED  %s: want %s, got %s\n", name, want, got);
            failed++;
        }
    }
    /* Bad arguments of the two hostile-mode functions. */
    pcp_test_server *server = NULL;
    if (pcp_test_server_set_hostile(NULL, "wrong_nonce") != PCP_INVALID_ARGUMENT ||
        pcp_test_server_set_loss_percent(NULL, 10) != PCP_INVALID_ARGUMENT ||
        pcp_test_server_start(NULL, &server) != PCP_OK ||
        pcp_test_server_set_hostile(server, "no such case") != PCP_INVALID_ARGUMENT ||
        pcp_test_server_set_loss_percent(server, 101) != PCP_INVALID_ARGUMENT ||
        pcp_test_server_set_loss_percent(server, 0) != PCP_OK) {
        printf("FAILED  bad arguments of set_hostile / set_loss_percent: %s\n", pcp_last_error());
        failed++;
    } else {
        passed++;
    }
    pcp_test_server_free(server);
    printf("hostile-c: %d passed, %d failed, %d pending\n", passed, failed, pending);
    return failed == 0 ? 0 : 1;
}
