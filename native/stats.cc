// Process-wide allocator facts: the break, mallinfo2, mallopt, malloc_trim,
// malloc_info, the glibc version and the page size; and a file's stat.
#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "heapscope.h"

namespace heapscope {

namespace {

// glibc's pre-2.33 struct mallinfo: int fields that wrap past 2 GiB.
struct MallInfo {
  int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks,
      fordblks, keepcost;
};

using Mallinfo2Fn = MallInfo2 (*)();
using MallinfoFn = MallInfo (*)();

// Looked up once: dlsym itself may allocate, and plans read mallinfo
// between steps where no allocation may happen.
struct Lookup {
  Mallinfo2Fn v2 = reinterpret_cast<Mallinfo2Fn>(dlsym(RTLD_DEFAULT, "mallinfo2"));
  MallinfoFn v1 = reinterpret_cast<MallinfoFn>(dlsym(RTLD_DEFAULT, "mallinfo"));
};

const Lookup& Functions() {
  static Lookup lookup;
  return lookup;
}

}  // namespace

void PrepareMallinfo() { Functions(); }

MallInfo2 ReadMallinfo(MallinfoSource* source) {
  const Lookup& fn = Functions();
  if (fn.v2 != nullptr) {
    *source = MallinfoSource::kMallinfo2;
    return fn.v2();
  }
  *source = MallinfoSource::kMallinfo;
  MallInfo m = fn.v1();
  // The int fields wrap; reading them as unsigned recovers sizes below 4 GiB.
  auto w = [](int v) { return static_cast<size_t>(static_cast<unsigned>(v)); };
  return MallInfo2{w(m.arena),   w(m.ordblks), w(m.smblks),   w(m.hblks),
                   w(m.hblkhd),  w(m.usmblks), w(m.fsmblks),  w(m.uordblks),
                   w(m.fordblks), w(m.keepcost)};
}

napi_value Addon::QuickProgramBreak(napi_env env, napi_callback_info cb) noexcept {
  napi_value out;
  if (napi_create_bigint_uint64(env, reinterpret_cast<uintptr_t>(sbrk(0)), &out) == napi_ok) return out;
  return Entry<&Addon::ProgramBreak>(env, cb);
}

Napi::Value Addon::ProgramBreak(const Napi::CallbackInfo& info) {
  return Address(info.Env(), reinterpret_cast<uintptr_t>(sbrk(0)));
}

// mallinfo(out): the ten fields, in glibc's order, written into `out` (a
// Float64Array of at least ten, made once by the caller: no object and no
// BigInt per call); returns which call answered (MallinfoSource).
Napi::Value Addon::Mallinfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[0].As<Napi::TypedArray>().ElementLength() < 10)
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "mallinfo takes a Float64Array of at least 10 elements");
  double* out = info[0].As<Napi::Float64Array>().Data();
  MallinfoSource source;
  MallInfo2 m = ReadMallinfo(&source);
  const size_t fields[10] = {m.arena,   m.ordblks,  m.smblks,   m.hblks,    m.hblkhd,
                             m.usmblks, m.fsmblks,  m.uordblks, m.fordblks, m.keepcost};
  for (size_t k = 0; k < 10; k++) out[k] = static_cast<double>(fields[k]);
  return Napi::Number::New(env, static_cast<double>(source));
}

Napi::Value Addon::Mallopt(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
    ThrowCode(info.Env(), "ERR_INVALID_ARG_TYPE", "mallopt(param, value) takes numbers");
  int param = info[0].As<Napi::Number>().Int32Value();
  int value = info[1].As<Napi::Number>().Int32Value();
  return Napi::Number::New(info.Env(), mallopt(param, value));
}

Napi::Value Addon::MallocTrim(const Napi::CallbackInfo& info) {
  size_t pad = ArgSize(info, 0);
  return Napi::Number::New(info.Env(), malloc_trim(pad));
}

// malloc_info writes to a stdio stream. open_memstream would calloc an
// 8 KiB buffer first, a large request that consolidates the caller's
// fastbins before they are reported; so the stream writes into a memfd
// through a buffer from mmap, and only fdopen's small FILE comes from malloc.
namespace {

constexpr size_t kInfoBuffer = 1 << 16;

// Releases what MallocInfo opened however it is left (an error thrown
// while the XML is copied out included).
struct InfoStream {
  int fd = -1;
  void* buffer = MAP_FAILED;
  FILE* stream = nullptr;
  ~InfoStream() {
    if (stream != nullptr)
      fclose(stream);  // closes fd too
    else if (fd >= 0)
      close(fd);
    if (buffer != MAP_FAILED) munmap(buffer, kInfoBuffer);
  }
};

}  // namespace

Napi::Value Addon::MallocInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  InfoStream s;
  s.fd = memfd_create("heapscope-malloc-info", MFD_CLOEXEC);
  if (s.fd < 0) ThrowCode(env, "ERR_MALLOC_INFO", "memfd_create failed", errno, "memfd_create");
  s.buffer = MapOwn(kInfoBuffer);
  if (s.buffer != MAP_FAILED) s.stream = fdopen(s.fd, "w");
  if (s.stream == nullptr)
    ThrowCode(env, "ERR_MALLOC_INFO", "cannot open a stream for malloc_info", errno, "fdopen");
  setvbuf(s.stream, static_cast<char*>(s.buffer), _IOFBF, kInfoBuffer);
  int rc = malloc_info(0, s.stream);
  int err = errno;
  fflush(s.stream);
  off_t length = lseek(s.fd, 0, SEEK_END);
  std::string xml(length > 0 ? static_cast<size_t>(length) : 0, '\0');
  ssize_t got = length > 0 ? pread(s.fd, &xml[0], xml.size(), 0) : 0;
  if (rc != 0 || got != static_cast<ssize_t>(xml.size()))
    ThrowCode(env, "ERR_MALLOC_INFO", "malloc_info failed", err, "malloc_info");
  return Napi::String::New(env, xml);
}

Napi::Value Addon::GlibcVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), gnu_get_libc_version());
}

Napi::Value Addon::PageSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sysconf(_SC_PAGESIZE)));
}

// fileStat(path or fd): a file's inode, size, modification time (ms) and
// whether it is a directory (1 or 0), from stat(2) or fstat(2), as numbers.
// Node builds its Stats by assigning each field, which throws at a
// getter-only accessor someone put on Object.prototype under that name
// (size, dev, ino, ...).
Napi::Value Addon::FileStat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct stat st;
  int rc;
  std::string what;
  if (info.Length() > 0 && info[0].IsString()) {
    what = info[0].As<Napi::String>().Utf8Value();
    rc = stat(what.c_str(), &st);
  } else if (info.Length() > 0 && info[0].IsNumber()) {
    what = "descriptor " + std::to_string(info[0].As<Napi::Number>().Int32Value());
    rc = fstat(info[0].As<Napi::Number>().Int32Value(), &st);
  } else {
    ThrowCode(env, "ERR_INVALID_ARG_TYPE", "fileStat takes a path or a file descriptor");
  }
  if (rc != 0) {
    const int err = errno;
    ThrowCode(env, "ERR_READ_FAILED", "cannot stat " + what + " (" + strerror(err) + ")", err, info[0].IsString() ? "stat" : "fstat");
  }
  Napi::Float64Array out = Napi::Float64Array::New(env, 4);
  out[0] = static_cast<double>(st.st_ino);
  out[1] = static_cast<double>(st.st_size);
  out[2] = static_cast<double>(st.st_mtim.tv_sec) * 1e3 + static_cast<double>(st.st_mtim.tv_nsec) / 1e6;
  out[3] = S_ISDIR(st.st_mode) ? 1 : 0;
  return out;
}

}  // namespace heapscope
