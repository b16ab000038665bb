/* Loaded through LD_PRELOAD, it leaves a mark: a test checks that no job variable reaches bwrap or the compiler. */
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
    int fd = open(MARK, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
}
