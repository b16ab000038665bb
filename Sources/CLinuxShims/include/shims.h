#ifndef SWLAUNCH_LINUX_SHIMS_H
#define SWLAUNCH_LINUX_SHIMS_H

/// openat2(2) with `resolve` flags (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS ...); -1 and errno on failure.
int swl_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve);
/// pidfd_open(2); -1 and errno on failure.
int swl_pidfd_open(int pid);
/// The peer's pid, uid and gid of a Unix socket (SO_PEERCRED); -1 and errno on failure.
int swl_peer_credentials(int fd, int *pid, unsigned int *uid, unsigned int *gid);

extern const unsigned long long SWL_RESOLVE_BENEATH;
extern const unsigned long long SWL_RESOLVE_NO_SYMLINKS;
extern const unsigned long long SWL_RESOLVE_NO_MAGICLINKS;
extern const unsigned long long SWL_RESOLVE_NO_XDEV;

extern const int SWL_O_PATH;
extern const int SWL_SO_PEERCRED;
/// Whether the file has a POSIX access ACL (which mode bits alone do not describe); -1 on error.
int swl_has_access_acl(int fd);

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGWINCH in the calling thread and returns a signalfd(2) that reads them
/// (close-on-exec, non-blocking); -1 and errno on failure.
int swl_terminal_signalfd(void);
/// Reads one signal from a signalfd; its number, or -1 when none is pending.
int swl_read_signalfd(int fd);
/// The terminal's columns and rows (TIOCGWINSZ); -1 when `fd` is not a terminal.
int swl_terminal_size(int fd, int *columns, int *rows);
/// CPUs this thread may run on (its affinity mask), 0 when unknown.
int swl_usable_cpus(void);
/// Raises the calling thread's nice value to `nice` (Linux keeps one per thread); lowering it back needs privileges,
/// so a thread that is already nicer is left as it is. 0, or -1 and errno.
int swl_lower_thread_priority(int nice);
/// The calling thread's nice value.
int swl_thread_priority(void);
#endif
