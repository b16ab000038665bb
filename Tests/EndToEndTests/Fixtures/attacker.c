/* A "compiler" for security tests: runs in the helper's sandbox exactly as a job's compiler does and tries,
   one argument at a time, what a hostile job would. Prints "OK <action>" or "FAIL <action>: <error>". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void report(const char *action, int ok) {
    if (ok) printf("OK %s\n", action); else printf("FAIL %s: %s\n", action, strerror(errno));
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", argv[i]);
        char *verb = strtok(copy, ":"), *a = strtok(NULL, ":"), *b = strtok(NULL, ":");
        if (!verb || !a) continue;
        if (!strcmp(verb, "read")) {
            int fd = open(a, O_RDONLY);
            char buffer[64];
            int ok = fd >= 0 && read(fd, buffer, sizeof buffer) >= 0;
            report(argv[i], ok);
            if (fd >= 0) close(fd);
        } else if (!strcmp(verb, "write")) {
            int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int ok = fd >= 0 && write(fd, "tampered", 8) == 8;
            report(argv[i], ok);
            if (fd >= 0) close(fd);
        } else if (!strcmp(verb, "chmodwrite")) {
            chmod(a, 0666);
            int fd = open(a, O_WRONLY | O_TRUNC);
            int ok = fd >= 0 && write(fd, "tampered", 8) == 8;
            report(argv[i], ok);
            if (fd >= 0) close(fd);
        } else if (!strcmp(verb, "symlink") && b) {
            unlink(b);
            report(argv[i], symlink(a, b) == 0);
        } else if (!strcmp(verb, "connect") && b) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(atoi(b)) };
            inet_pton(AF_INET, a, &address.sin_addr);
            report(argv[i], fd >= 0 && connect(fd, (struct sockaddr *)&address, sizeof address) == 0);
            if (fd >= 0) close(fd);
        } else if (!strcmp(verb, "env")) {
            const char *value = getenv(a);
            printf("ENV %s=%s\n", a, value ? value : "(unset)");
        }
    }
    return 0;
}
