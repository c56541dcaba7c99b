/* What a connected UDP socket reports after an ICMP port unreachable, for
 * the record of what wine 8.0 does differently from Windows (where the next
 * recv() says WSAECONNRESET and select() reports the socket readable).
 * Not part of the suite; the evidence behind pcp-core's
 * endpoint::socket::poll_reports_error. Build and run:
 *
 *   x86_64-w64-mingw32-gcc -O2 -o wine_icmp.exe tests/windows/wine_icmp.c -lws2_32
 *   wine64 wine_icmp.exe
 *
 * What wine 8.0 (Debian 8.0~repack-4) printed:
 *   A poll waits, then send: AFD poll events 0x100 status 0xc0000236, recv err 10035
 *   no poll waits, send: select -> 0, recv err 10035, SO_ERROR 10061
 *   SO_ERROR again after an answer came: 10061
 *   second send: recv err 10061
 * That is: the socket's first ICMP error reaches only a poll waiting when it
 * arrives (CONNECT_FAIL, STATUS_CONNECTION_REFUSED), never a read; SO_ERROR
 * keeps saying WSAECONNREFUSED even after datagrams arrive again; later
 * ICMP errors reach recv() (wine stops watching the socket after the first). */
#include <winsock2.h>
#include <windows.h>
#include <winternl.h>
#include <stdio.h>

typedef struct {
    LARGE_INTEGER Timeout;
    ULONG Count;
    ULONG Exclusive;
    struct { HANDLE Handle; ULONG Events; NTSTATUS Status; } Handles[1];
} poll_info;
typedef NTSTATUS(NTAPI *ioctl_fn)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, ULONG, PVOID, ULONG, PVOID, ULONG);
#define IOCTL_AFD_POLL 0x00012024
/* What the `polling` crate asks for a readable socket: RECEIVE, RECEIVE_EXPEDITED,
 * DISCONNECT, ABORT, ACCEPT, CONNECT_FAIL. */
#define READABLE_MASK 0x19b

/* A non-blocking UDP socket connected to a loopback port nobody listens on;
 * the port in *port. */
static SOCKET dead_socket(struct sockaddr_in *port) {
    SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SOCKET t = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    bind(t, (struct sockaddr *)&a, sizeof a);
    int len = sizeof a;
    getsockname(t, (struct sockaddr *)&a, &len);
    closesocket(t);
    u_long nb = 1;
    ioctlsocket(s, FIONBIO, &nb);
    connect(s, (struct sockaddr *)&a, sizeof a);
    if (port) *port = a;
    return s;
}

static int recv_error(SOCKET s) {
    char buf[8];
    return recv(s, buf, sizeof buf, 0) < 0 ? WSAGetLastError() : 0;
}

static int so_error(SOCKET s) {
    int e = 0, len = sizeof e;
    getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&e, &len);
    return e;
}

int main(void) {
    WSADATA w;
    WSAStartup(MAKEWORD(2, 2), &w);
    setvbuf(stdout, NULL, _IONBF, 0);
    /* Through void (*)(void): a FARPROC is cast to the real type, as the docs of GetProcAddress do. */
    ioctl_fn ioctl = (ioctl_fn)(void (*)(void))GetProcAddress(GetModuleHandleA("ntdll.dll"), "NtDeviceIoControlFile");

    SOCKET s = dead_socket(NULL);
    poll_info in = {0}, out = {0};
    in.Timeout.QuadPart = -20000000LL; /* 2 s */
    in.Count = 1;
    in.Handles[0].Handle = (HANDLE)s;
    in.Handles[0].Events = READABLE_MASK;
    IO_STATUS_BLOCK iosb;
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    NTSTATUS st = ioctl((HANDLE)s, ev, NULL, NULL, &iosb, IOCTL_AFD_POLL, &in, sizeof in, &out, sizeof out);
    send(s, "x", 1, 0);
    if (st == 0x103) { /* STATUS_PENDING */
        WaitForSingleObject(ev, 5000);
        st = iosb.Status;
    }
    printf("A poll waits, then send: AFD poll events 0x%lx status 0x%lx, recv err %d\n", out.Count ? out.Handles[0].Events : 0,
           (unsigned long)(out.Count ? out.Handles[0].Status : st), recv_error(s));
    closesocket(s);

    struct sockaddr_in port;
    s = dead_socket(&port);
    send(s, "x", 1, 0);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(s, &rd);
    struct timeval tv = {0, 500000};
    int r = select(0, &rd, NULL, NULL, &tv);
    int e = recv_error(s);
    printf("no poll waits, send: select -> %d, recv err %d, SO_ERROR %d\n", r, e, so_error(s));
    /* The port comes alive and answers. */
    SOCKET srv = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    bind(srv, (struct sockaddr *)&port, sizeof port);
    send(s, "y", 1, 0);
    char buf[8];
    struct sockaddr_in from;
    int fl = sizeof from;
    Sleep(50);
    if (recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl) > 0) sendto(srv, "z", 1, 0, (struct sockaddr *)&from, fl);
    Sleep(50);
    recv_error(s);
    printf("SO_ERROR again after an answer came: %d\n", so_error(s));
    closesocket(srv);
    send(s, "x", 1, 0);
    Sleep(50);
    printf("second send: recv err %d\n", recv_error(s));
    closesocket(s);
    return 0;
}
