// Addresses of known objects, one of each kind the process layout shows:
// the addon's own text, data, bss and read-only data, a stack variable,
// libc's malloc, node's own code, the environment strings and the vDSO.
#include <dlfcn.h>
#include <sys/auxv.h>

#include "heapscope.h"

extern char** environ;

namespace heapscope {

namespace {

// volatile keeps the compiler from folding these into read-only data.
volatile int g_initialised = 42;  // .data
volatile char g_zeroed[64];       // .bss
const char k_constant[] = "heapscope: a string constant in .rodata";

}  // namespace

Napi::Value Addon::Addresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  volatile int local = g_initialised;  // on this native call's stack
  auto a = [&](const void* p) { return Address(env, reinterpret_cast<uintptr_t>(p)); };
  Napi::Object out = Napi::Object::New(env);
  out.Set("addonFunction", a(reinterpret_cast<const void*>(&Addon::Init)));
  out.Set("initialisedGlobal", a(const_cast<int*>(&g_initialised)));
  out.Set("zeroGlobal", a(const_cast<char*>(g_zeroed)));
  out.Set("stringConstant", a(k_constant));
  out.Set("stackLocal", a(const_cast<int*>(&local)));
  // RTLD_DEFAULT would find the executable's PLT stub for malloc (a non-PIE
  // node exports one); ask libc itself for its own definition.
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void* libcMalloc = libc != nullptr ? dlsym(libc, "malloc") : nullptr;
  if (libc != nullptr) dlclose(libc);
  out.Set("libcMalloc", a(libcMalloc));
  out.Set("nodeFunction", a(dlsym(RTLD_DEFAULT, "napi_create_object")));
  out.Set("environmentString", a(environ != nullptr ? environ[0] : nullptr));
  out.Set("vdso", a(reinterpret_cast<const void*>(getauxval(AT_SYSINFO_EHDR))));
  return out;
}

}  // namespace heapscope
