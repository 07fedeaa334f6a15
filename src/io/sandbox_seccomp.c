/*
 * sandbox_seccomp: the filter every job runs under, built in the parent
 * with libseccomp and exported as raw BPF, so that the child installs it
 * with one prctl and no allocation.
 */
#include "base/err.h"
#include "base/log.h"
#include "io/sandbox_int.h"

#include <errno.h>
#include <limits.h>
#include <linux/sched.h> /* CLONE_NEW* */
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Syscalls a batch job never needs. Names unknown to libseccomp are skipped. */
static const char *const seccomp_denied[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "syslog",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "iopl",
    "ioperm",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "fanotify_init",
    "mount_setattr",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "vm86",
    "vm86old",
};

/*
 * Denying unshare alone leaves clone(CLONE_NEW*) as a way into new
 * namespaces: refuse those flags. clone3 passes its flags in memory that
 * seccomp cannot read, so it gets ENOSYS, which makes libc fall back to
 * clone (the same approach as Docker's and systemd's filters).
 */
static int seccomp_add_clone_rules(scmp_filter_ctx ctx)
{
#if !defined(__s390__) && !defined(__s390x__) /* there clone's flags are the second argument */
    static const uint64_t ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
        if (rc < 0) return rc;
    }
#endif
    int clone3_nr = seccomp_syscall_resolve_name("clone3");
    if (clone3_nr >= 0) return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3_nr, 0);
    return 0;
}

int sandbox__seccomp_build(struct sock_fprog *prog)
{
    int rc = OP_ESYS;
    int memfd = -1;
    void *buf = NULL;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        log_error("sandbox", "seccomp_init failed");
        return OP_ESYS;
    }
    /* A syscall from a foreign ABI (e.g. 32-bit int 0x80) would bypass the list: kill it. */
    int lrc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (lrc < 0) lrc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
    if (lrc < 0) goto libfail;
    for (size_t i = 0; i < sizeof seccomp_denied / sizeof seccomp_denied[0]; i++) {
        int nr = seccomp_syscall_resolve_name(seccomp_denied[i]);
        if (nr == __NR_SCMP_ERROR || nr < 0) continue; /* unknown, or not on this architecture */
        lrc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (lrc < 0) goto libfail;
    }
    lrc = seccomp_add_clone_rules(ctx);
    if (lrc < 0) goto libfail;

    memfd = memfd_create("sandbox-bpf", MFD_CLOEXEC);
    if (memfd < 0) {
        log_error("sandbox", "memfd_create: %s", strerror(errno));
        goto out;
    }
    lrc = seccomp_export_bpf(ctx, memfd);
    if (lrc < 0) goto libfail;
    off_t size = lseek(memfd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        size / (off_t)sizeof(struct sock_filter) > USHRT_MAX) {
        log_error("sandbox", "seccomp export produced %lld bytes", (long long)size);
        goto out;
    }
    buf = malloc((size_t)size);
    if (!buf) {
        rc = OP_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t n = pread(memfd, (char *)buf + got, (size_t)size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_error("sandbox", "reading seccomp program: %s", n < 0 ? strerror(errno) : "EOF");
            goto out;
        }
        got += (size_t)n;
    }
    prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    prog->filter = buf;
    buf = NULL;
    rc = OP_OK;
    goto out;
libfail:
    log_error("sandbox", "libseccomp: %s", strerror(-lrc));
out:
    free(buf);
    if (memfd >= 0) close(memfd);
    seccomp_release(ctx);
    return rc;
}
