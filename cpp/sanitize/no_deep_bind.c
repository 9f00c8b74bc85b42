/* Preloaded only for the sanitizer test run (scripts/sanitize.sh): OpenVINO's TBB opens
 * libtbbbind with RTLD_DEEPBIND, which AddressSanitizer refuses. Without the flag the
 * library binds to the process's symbols, which is what ASan needs anyway. */
#define _GNU_SOURCE
#include <dlfcn.h>

void* dlopen(const char* file, int flags) {
    static void* (*next_dlopen)(const char*, int);
    if (!next_dlopen) next_dlopen = (void* (*)(const char*, int))dlsym(RTLD_NEXT, "dlopen");
    return next_dlopen(file, flags & ~RTLD_DEEPBIND);
}
