/*
 * copy_file_range(2) for Node: copies a byte range from one file to a position of another
 * inside the kernel (no pass through user memory), on a libuv worker thread. Node has no
 * binding for it; src/source/kernel-copy.ts loads this addon when it was built and falls back
 * to positional reads and writes through a buffer pool when it was not.
 *
 * copyFileRange(fdIn, offsetIn, fdOut, offsetOut, length) -> Promise<number>: the bytes copied,
 * fewer than `length` only when the input file ends first. Rejects with an Error whose `code`
 * is the errno name (EXDEV, ENOSYS, EOPNOTSUPP, EINVAL… mean "not supported here").
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

static void settle(napi_env env, napi_status status, void *data) {
  Job *job = data;
  if (status != napi_ok && job->error == 0) job->error = ECANCELED;
  if (job->error != 0) {
    const char *name = strerrorname_np(job->error);
    napi_value code, message, error;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(job->error), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &error);
    napi_reject_deferred(env, job->deferred, error);
  } else {
    napi_value done;
    napi_create_double(env, (double)job->done, &done);
    napi_resolve_deferred(env, job->deferred, done);
  }
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
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "copyFileRange", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, run, settle, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "copyFileRange", NAPI_AUTO_LENGTH, copy_range, NULL, &fn);
  napi_set_named_property(env, exports, "copyFileRange", fn);
  return exports;
}
