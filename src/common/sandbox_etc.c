/* sandbox_etc.c - the generated /etc files (sandbox_etc.h says who uses them). */
#include "sandbox_etc.h"

const char sandbox_etc_passwd[] = "root:x:0:0:root:/root:/bin/bash\n"
                                  "user:x:1000:1000:user:/home/user:/bin/bash\n"
                                  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const char sandbox_etc_group[] = "root:x:0:\n"
                                 "tty:x:5:\n"
                                 "user:x:1000:\n"
                                 "nogroup:x:65534:\n";
const char sandbox_etc_nsswitch[] = "passwd: files\n"
                                    "group: files\n"
                                    "shadow: files\n"
                                    "hosts: files\n"
                                    "networks: files\n"
                                    "protocols: files\n"
                                    "services: files\n"
                                    "ethers: files\n"
                                    "rpc: files\n";
const char sandbox_etc_hosts_fmt[] = "127.0.0.1 localhost %s\n::1 localhost ip6-localhost ip6-loopback\n";
const char sandbox_etc_hostname_fmt[] = "%s\n";

const char *const sandbox_etc_host_files[] = {
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "matplotlibrc", "fonts", "mime.types",
};
const size_t sandbox_etc_n_host_files = sizeof(sandbox_etc_host_files) / sizeof(sandbox_etc_host_files[0]);
