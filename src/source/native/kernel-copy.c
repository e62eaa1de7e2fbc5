/*
 * Copies into files inside the kernel for Node, on libuv worker threads. Node has no binding
 * for either; src/source/kernel-copy.ts loads this addon when it was built, and the callers fall
 * back to positional reads and writes through a buffer pool when it was not.
 *
 * copyFileRange(fdIn, offsetIn, fdOut, offsetOut, length) -> Promise<number>: copy_file_range(2),
 * a byte range of one file to a position of another (no pass through user memory); the bytes
 * copied, fewer than `length` only when the input file ends first.
 *
 * writeSpliced(fd, bytes, offset, length, position) -> Promise<number>: bytes[offset, offset +
 * length) written at `position` of `fd` by vmsplice(2) into a pipe and splice(2) from it, all
 * `length` of them unless the file refuses more (a full disk: then, as pwrite, the bytes
 * written, and the next call fails with the errno). The kernel copies the bytes into the page
 * cache from its own mapping of the buffer's pages instead of from user space (on the
 * project's VM a pwrite loop spent 2-3x the system time of this for the same bytes). The pipe is the worker thread's own, emptied by each
 * call (and closed after a failure, so no bytes of a failed call reach the next). The buffer is
 * held until the promise settles and must not change before.
 *
 * Both reject with an Error whose `code` is the errno name (EXDEV, ENOSYS, EOPNOTSUPP, EINVAL…
 * mean "not supported here").
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct {
  int fd_in;
  int fd_out;
  int64_t off_in;
  int64_t off_out;
  int64_t length;
  int64_t done;
  int error;
  napi_async_work work;
  napi_deferred deferred;
} Job;

static void run(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  loff_t in = job->off_in;
  loff_t out = job->off_out;
  while (job->done < job->length) {
    ssize_t n = copy_file_range(job->fd_in, &in, job->fd_out, &out,
                                (size_t)(job->length - job->done), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      job->error = errno;
      return;
    }
    if (n == 0) return; /* the input ended: the caller reports the short copy */
    job->done += n;
  }
}

/* Settles `deferred` with `done` or, when `error` is set (or the work failed), an Error whose
 * `code` is the errno name. */
static void settle_promise(napi_env env, napi_status status, napi_deferred deferred, int error,
                           int64_t done) {
  if (status != napi_ok && error == 0) error = ECANCELED;
  if (error != 0) {
    const char *name = strerrorname_np(error);
    napi_value code, message, err;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(error), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &err);
    napi_reject_deferred(env, deferred, err);
  } else {
    napi_value value;
    napi_create_double(env, (double)done, &value);
    napi_resolve_deferred(env, deferred, value);
  }
}

/* Queues `run` on a libuv worker thread with `settle` after it: the promise it settles. */
static napi_value queue(napi_env env, const char *name, napi_async_execute_callback run,
                        napi_async_complete_callback settle, void *job, napi_deferred *deferred,
                        napi_async_work *work) {
  napi_value promise, resource;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, run, settle, job, work);
  napi_queue_async_work(env, *work);
  return promise;
}

static void settle(napi_env env, napi_status status, void *data) {
  Job *job = data;
  settle_promise(env, status, job->deferred, job->error, job->done);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value copy_range(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 5) {
    napi_throw_type_error(env, NULL, "copyFileRange(fdIn, offsetIn, fdOut, offsetOut, length)");
    return NULL;
  }
  int32_t fd_in, fd_out;
  int64_t off_in, off_out, length;
  if (napi_get_value_int32(env, argv[0], &fd_in) != napi_ok ||
      napi_get_value_int64(env, argv[1], &off_in) != napi_ok ||
      napi_get_value_int32(env, argv[2], &fd_out) != napi_ok ||
      napi_get_value_int64(env, argv[3], &off_out) != napi_ok ||
      napi_get_value_int64(env, argv[4], &length) != napi_ok || off_in < 0 || off_out < 0 ||
      length < 0) {
    napi_throw_type_error(env, NULL, "copyFileRange: file descriptors and non-negative integers");
    return NULL;
  }
  Job *job = calloc(1, sizeof(Job));
  if (!job) {
    napi_throw_error(env, "ENOMEM", "copyFileRange: out of memory");
    return NULL;
  }
  job->fd_in = fd_in;
  job->fd_out = fd_out;
  job->off_in = off_in;
  job->off_out = off_out;
  job->length = length;
  return queue(env, "copyFileRange", run, settle, job, &job->deferred, &job->work);
}

/* The worker thread's pipe for writeSpliced, and how much it holds. */
static __thread int pipe_fd[2] = {-1, -1};
static __thread size_t pipe_bytes = 0;

/* Pipe capacity asked for (the unprivileged maximum by default, /proc/sys/fs/pipe-max-size). */
#define PIPE_BYTES (1 << 20)

static void drop_pipe(void) {
  if (pipe_fd[0] >= 0) {
    close(pipe_fd[0]);
    close(pipe_fd[1]);
  }
  pipe_fd[0] = pipe_fd[1] = -1;
}

typedef struct {
  int fd;
  const char *data;
  int64_t length;
  int64_t position;
  int64_t done;
  int error;
  napi_ref buffer;
  napi_async_work work;
  napi_deferred deferred;
} WriteJob;

static void run_write(napi_env env, void *data) {
  (void)env;
  WriteJob *job = data;
  if (pipe_fd[0] < 0) {
    if (pipe2(pipe_fd, O_CLOEXEC) != 0) {
      job->error = errno;
      pipe_fd[0] = pipe_fd[1] = -1;
      return;
    }
    int got = fcntl(pipe_fd[1], F_SETPIPE_SZ, PIPE_BYTES);
    pipe_bytes = got > 0 ? (size_t)got : 65536;
  }
  loff_t pos = job->position;
  while (job->done < job->length) {
    size_t want = (size_t)(job->length - job->done);
    if (want > pipe_bytes) want = pipe_bytes;
    struct iovec iov = {(void *)(job->data + job->done), want};
    ssize_t n = vmsplice(pipe_fd[1], &iov, 1, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      /* After some bytes, a short write (as pwrite's): the next call meets the error itself. */
      if (job->done == 0) job->error = errno;
      drop_pipe();
      return;
    }
    /* All of it into the file before the next piece (or the caller's next use of the buffer). */
    for (ssize_t out = 0; out < n;) {
      ssize_t k = splice(pipe_fd[0], NULL, job->fd, &pos, (size_t)(n - out), SPLICE_F_MOVE);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        job->done += out;
        if (job->done == 0) job->error = k < 0 ? errno : EIO;
        drop_pipe(); /* what is left in it must not reach the next call */
        return;
      }
      out += k;
    }
    job->done += n;
  }
}

static void settle_write(napi_env env, napi_status status, void *data) {
  WriteJob *job = data;
  settle_promise(env, status, job->deferred, job->error, job->done);
  napi_delete_reference(env, job->buffer);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value write_spliced(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t offset, length, position;
  bool typed = false;
  napi_typedarray_type type;
  size_t elements, byte_offset;
  void *data = NULL;
  napi_value array_buffer;
  if (argc == 5) napi_is_typedarray(env, argv[1], &typed);
  if (!typed || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &elements, &data, &array_buffer,
                               &byte_offset) != napi_ok ||
      type != napi_uint8_array || napi_get_value_int64(env, argv[2], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_get_value_int64(env, argv[4], &position) != napi_ok || offset < 0 || length < 0 ||
      position < 0 || (uint64_t)offset + (uint64_t)length > (uint64_t)elements) {
    napi_throw_type_error(env, NULL,
                          "writeSpliced(fd, uint8Array, offset, length, position): a range "
                          "inside the array and a non-negative position");
    return NULL;
  }
  WriteJob *job = calloc(1, sizeof(WriteJob));
  if (!job) {
    napi_throw_error(env, "ENOMEM", "writeSpliced: out of memory");
    return NULL;
  }
  job->fd = fd;
  job->data = (const char *)data + offset;
  job->length = length;
  job->position = position;
  napi_create_reference(env, argv[1], 1, &job->buffer);
  return queue(env, "writeSpliced", run_write, settle_write, job, &job->deferred, &job->work);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "copyFileRange", NAPI_AUTO_LENGTH, copy_range, NULL, &fn);
  napi_set_named_property(env, exports, "copyFileRange", fn);
  napi_create_function(env, "writeSpliced", NAPI_AUTO_LENGTH, write_spliced, NULL, &fn);
  napi_set_named_property(env, exports, "writeSpliced", fn);
  return exports;
}
