/* bcryptprimitives.dll for Wine releases that lack it (Wine 8, Debian 12's): Rust's standard
 * library (1.78 and later) takes its random bytes from ProcessPrng there, and a Windows
 * program built by Rust does not start without it. This is that one function, on the
 * RtlGenRandom every Wine has; scripts/wine-tests.sh builds it with mingw-w64 and puts it
 * into Parley's own Wine prefix only when that Wine has no bcryptprimitives.dll. Real
 * Windows (8.1 and later) has the DLL and never sees this file. */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (!RtlGenRandom(data, n)) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
