/*
 * pmem_copy: copy a file into persistent memory with the libpmem C API,
 * served by pmem-capi's libpmem_capi.so (pmem-sys behind PMDK's C ABI). Nothing
 * here is specific to pmem-sys: the same source builds against PMDK's
 * libpmem.
 *
 *   cargo build --release -p pmem-capi
 *   ln -sf libpmem_capi.so target/release/libpmem.so     # for -lpmem
 *   ln -sf libpmem_capi.so target/release/libpmem.so.1   # the SONAME it records
 *   cc -O2 -Ipmem-capi/include examples/capi/pmem_copy.c \
 *      -Ltarget/release -lpmem -Wl,-rpath,$PWD/target/release -o pmem_copy
 *   ./pmem_copy SRC /dev/shm/copy.pmem
 *   PMEM_IS_PMEM_FORCE=1 ./pmem_copy SRC /dev/shm/copy.pmem
 *
 * DST is created (it must not exist) with SRC's size. Persistent memory is
 * written with non-temporal copies that are flushed as they go and drained
 * once at the end; any other mapping is written with memcpy and made durable
 * with msync. The copy is then mapped again and compared with SRC.
 *
 * Exit status 0 on success; 1 with a message from pmem_errormsg() or errno
 * on failure, leaving no DST behind.
 */

#define _POSIX_C_SOURCE 200809L

#include <libpmem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes read from SRC per step: large enough for the non-temporal path. */
#define CHUNK ((size_t)1 << 20)

static int fail(const char *what, const char *detail)
{
	fprintf(stderr, "pmem_copy: %s: %s\n", what, detail);
	return 1;
}

/* Copies SRC (fd, size bytes) into the mapping at pmem; 0 or -1 with errno. */
static int copy_into(int fd, char *pmem, size_t size, int is_pmem)
{
	static char buf[CHUNK];
	size_t done = 0;

	while (done < size) {
		ssize_t got = read(fd, buf, CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = EIO; /* SRC shrank while being copied */
			return -1;
		}
		if ((size_t)got > size - done)
			got = (ssize_t)(size - done);
		if (is_pmem) {
			/* Flushed as it goes; one drain at the end for all. */
			pmem_memcpy_nodrain(pmem + done, buf, (size_t)got);
		} else {
			memcpy(pmem + done, buf, (size_t)got);
		}
		done += (size_t)got;
	}
	if (is_pmem) {
		pmem_drain();
		return 0;
	}
	return pmem_msync(pmem, size);
}

int main(int argc, char *argv[])
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SRC DST\n", argv[0]);
		return 2;
	}
	const char *src = argv[1], *dst = argv[2];

	int fd = open(src, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return fail(src, strerror(errno));
	if (st.st_size == 0)
		return fail(src, "is empty (a mapping cannot be)");
	size_t size = (size_t)st.st_size;

	/* CREATE|EXCL: a new file of exactly SRC's size, never an old one. */
	size_t mapped_len;
	int is_pmem;
	char *pmem = pmem_map_file(dst, size, PMEM_FILE_CREATE | PMEM_FILE_EXCL,
				   0644, &mapped_len, &is_pmem);
	if (pmem == NULL)
		return fail("pmem_map_file", pmem_errormsg());

	if (copy_into(fd, pmem, size, is_pmem) != 0) {
		int err = errno;
		pmem_unmap(pmem, mapped_len);
		unlink(dst);
		return fail("copy", strerror(err));
	}
	close(fd);
	pmem_unmap(pmem, mapped_len);

	/* Read it back through a fresh mapping and compare with SRC. */
	pmem = pmem_map_file(dst, 0, 0, 0, &mapped_len, NULL);
	if (pmem == NULL)
		return fail("pmem_map_file", pmem_errormsg());
	fd = open(src, O_RDONLY);
	if (fd < 0)
		return fail(src, strerror(errno));
	static char buf[CHUNK];
	size_t checked = 0;
	int same = mapped_len == size;
	while (same && checked < size) {
		ssize_t got = read(fd, buf, CHUNK);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		same = memcmp(pmem + checked, buf, (size_t)got) == 0;
		checked += (size_t)got;
	}
	close(fd);
	pmem_unmap(pmem, mapped_len);
	if (!same || checked != size)
		return fail(dst, "differs from SRC after the copy");

	printf("copied %zu bytes from %s to %s (%s)\n", size, src, dst,
	       is_pmem ? "persistent memory: non-temporal copy, one drain"
		       : "not persistent memory: memcpy and msync");
	return 0;
}
