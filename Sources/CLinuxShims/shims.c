#define _GNU_SOURCE
#include "shims.h"
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fcntl.h>
const int SWL_O_PATH = O_PATH;
const int SWL_SO_PEERCRED = SO_PEERCRED;

#include <sys/xattr.h>
#include <errno.h>
#include <stdio.h>
int swl_has_access_acl(int fd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = getxattr(path, "system.posix_acl_access", NULL, 0);
    if (n >= 0) return 1;
    if (errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP) return 0;
    return -1;
}
const unsigned long long SWL_RESOLVE_BENEATH = RESOLVE_BENEATH;
const unsigned long long SWL_RESOLVE_NO_SYMLINKS = RESOLVE_NO_SYMLINKS;
const unsigned long long SWL_RESOLVE_NO_MAGICLINKS = RESOLVE_NO_MAGICLINKS;
const unsigned long long SWL_RESOLVE_NO_XDEV = RESOLVE_NO_XDEV;

int swl_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve) {
    struct open_how how = { .flags = (unsigned long long)flags, .mode = mode, .resolve = resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int swl_pidfd_open(int pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int swl_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

#include <signal.h>
#include <sys/signalfd.h>
#include <pthread.h>
#include <sys/ioctl.h>

int swl_terminal_signalfd(void) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGWINCH);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) return -1;
    return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

int swl_read_signalfd(int fd) {
    struct signalfd_siginfo info;
    if (read(fd, &info, sizeof info) != (ssize_t)sizeof info) return -1;
    return (int)info.ssi_signo;
}

int swl_terminal_size(int fd, int *columns, int *rows) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) return -1;
    *columns = size.ws_col;
    *rows = size.ws_row;
    return 0;
}

#include <sched.h>
int swl_usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

#include <sys/resource.h>
int swl_lower_thread_priority(int nice) {
    pid_t thread = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int current = getpriority(PRIO_PROCESS, (id_t)thread);
    if (current == -1 && errno != 0) return -1;
    if (current >= nice) return 0;
    return setpriority(PRIO_PROCESS, (id_t)thread, nice);
}

int swl_thread_priority(void) {
    return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}
