/*
 * bcryptprimitives.dll for wine 8.0, which lacks it: Rust's std (since
 * 1.78) takes its random bytes (HashMap keys, and so ours) from
 * ProcessPrng there. This one exports ProcessPrng and fills the buffer
 * from RtlGenRandom (SystemFunction036 in advapi32), which wine has.
 * Only for running the Windows test suite under wine; never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
