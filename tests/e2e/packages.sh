#!/usr/bin/env bash
# The packages, as a user gets them: build them with CPack, install the .deb files with dpkg into
# a throwaway root (dpkg --root: its own database, nothing outside it touched; the .tar.gz is
# extracted elsewhere), run the installed tools from there, and build a provider plugin
# (plugins/nats) and applications against the installed files alone.
# Usage: packages.sh <athomic build dir> <source dir>
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work="$build/e2e-packages"
rm -rf "$work"
mkdir -p "$work/root" "$work/tgz" "$work/plugins" "$work/run"
fail() { echo "FAIL: $*"; exit 1; }
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
[ -n "$triplet" ] || fail "no multiarch triplet"
libdir="usr/lib/$triplet"

echo "== cpack"
(cd "$build" && cpack -B "$work/pkgs") >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; fail "cpack"; }
ls "$work/pkgs"/*.deb "$work/pkgs"/*.tar.gz
packages=(libathomic0 athomic-tools athomic-provider-redis libathomic-dev)
declare -A files
summaries=""
for p in "${packages[@]}"; do
  deb=$(ls "$work/pkgs/${p}_"*.deb) || fail "no package $p"
  # (captured first: grep -q would close the pipe under dpkg-deb)
  files[$p]=$(dpkg-deb -c "$deb" | awk '{print $6}')
  description=$(dpkg-deb -f "$deb" Description)
  summary=$(head -1 <<<"$description")
  long=$(tail -n +2 <<<"$description")
  [ -n "$long" ] || fail "$p has no long description"
  summaries+="$summary"$'\n'
  echo "$p: $summary; Depends: $(dpkg-deb -f "$deb" Depends)"
done
[ "$(sort -u <<<"$summaries" | grep -c .)" = 4 ] || fail "the packages share a description: $summaries"
runtime_deps=$(dpkg-deb -f "$work"/pkgs/libathomic0_*.deb Depends)
redis_deps=$(dpkg-deb -f "$work"/pkgs/athomic-provider-redis_*.deb Depends)
tools_deps=$(dpkg-deb -f "$work"/pkgs/athomic-tools_*.deb Depends)
grep -q libspdlog <<<"$runtime_deps" || fail "runtime does not depend on spdlog"
# The redis provider links no client library (it speaks RESP itself): its dependencies are the
# runtime and what dpkg-shlibdeps finds.
grep -q 'libathomic0' <<<"$redis_deps" || fail "redis package does not depend on the runtime"
grep -q 'libc6' <<<"$redis_deps" || fail "redis package lacks its shared-library dependencies"
grep -q 'libathomic0 (= ' <<<"$tools_deps" || fail "tools package does not depend on the runtime: $tools_deps"
# Libraries in the multiarch folder; each file in the package it belongs to.
grep -qx "./$libdir/libathomic.so.0" <<<"${files[libathomic0]}" || fail "libathomic.so.0 not in /$libdir: ${files[libathomic0]}"
grep -qx "./$libdir/athomic/plugins/athomic_provider_local.so" <<<"${files[libathomic0]}" || fail "local provider not in the runtime package"
grep -q 'usr/bin/' <<<"${files[libathomic0]}" && fail "the runtime package ships tools: ${files[libathomic0]}"
grep -q 'athomic_provider_redis.so' <<<"${files[libathomic0]}" && fail "redis provider in the runtime package"
grep -qx "./$libdir/athomic/plugins/athomic_provider_redis.so" <<<"${files[athomic-provider-redis]}" || fail "redis provider not in /$libdir"
for tool in athomic athomic-demo; do
  grep -qx "./usr/bin/$tool" <<<"${files[athomic-tools]}" || fail "$tool not in athomic-tools: ${files[athomic-tools]}"
done
grep -q '\.so' <<<"${files[athomic-tools]}" && fail "athomic-tools ships a library: ${files[athomic-tools]}"
grep -q 'include/athomic/sdk/provider.h' <<<"${files[libathomic-dev]}" || fail "SDK header not in the dev package"
grep -qx "./$libdir/libathomic.so" <<<"${files[libathomic-dev]}" || fail "the link-time libathomic.so not in the dev package"
grep -qx "./$libdir/cmake/athomic/athomicConfig.cmake" <<<"${files[libathomic-dev]}" || fail "CMake package not in the dev package"
grep -qx "./$libdir/pkgconfig/athomic.pc" <<<"${files[libathomic-dev]}" || fail "pkg-config file not in the dev package"
grep -qx './usr/bin/athomic-conformance' <<<"${files[libathomic-dev]}" || fail "conformance suite not in the dev package"
for doc in ARCHITECTURE CONFIGURATION WRITING_A_PROVIDER BENCHMARKS; do
  grep -qx "./usr/share/doc/athomic/$doc.md" <<<"${files[libathomic-dev]}" || fail "docs/$doc.md not in the dev package"
done

echo "== dpkg --root: installed into a throwaway root with its own package database"
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
# The system libraries they depend on are the machine's, not in this database: --force-depends,
# and the warnings it prints must name none of these packages (their own dependencies hold).
# The library first: the others' dependency on it is then checked against this database.
for batch in "$work"/pkgs/libathomic0_*.deb "$(ls "$work"/pkgs/*.deb | grep -v /libathomic0_)"; do
  # shellcheck disable=SC2086 # the second batch is a list of paths without spaces
  dpkg --root="$root" --log=/dev/null --force-not-root --force-depends --force-script-chrootless \
       --install $batch >>"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --install"; }
done
grep -E "depends on (libathomic0|athomic-tools|athomic-provider-redis|libathomic-dev)" "$work/dpkg.log" \
  && fail "a dependency between the packages is not met: $(cat "$work/dpkg.log")"
for p in "${packages[@]}"; do
  [ "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Status}' "$p")" = "install ok installed" ] \
    || fail "$p is not installed: $(cat "$work/dpkg.log")"
done
cd "$work/run"   # no settings file here: defaults
"$root/usr/bin/athomic" --version | grep -q "^athomic " || fail "installed athomic --version"
"$root/usr/bin/athomic" backends | tee "$work/backends.txt"
grep -q "^Backends: local, redis$" "$work/backends.txt" || fail "installed tool does not find its plugins"
grep -q "$root/$libdir/athomic/plugins" "$work/backends.txt" || fail "plugins not found next to the installed library"
"$root/usr/bin/athomic" doctor >"$work/doctor.txt" 2>&1 || { cat "$work/doctor.txt"; fail "installed athomic doctor"; }
"$root/usr/bin/athomic-demo" >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; fail "installed demo"; }
grep -q "\[trace_id=trace-4711 tenant_id=acme\] Auditing creation of user user-123" "$work/demo.log" || fail "demo output"
ATHOMIC_PLUGIN_PATH= "$root/usr/bin/athomic-conformance" --gtest_list_tests >/dev/null \
  || fail "the installed conformance suite does not run"

echo "== build a provider against the installed SDK"
cmake -S "$src/plugins/nats" -B "$work/nats" -DCMAKE_PREFIX_PATH="$root/usr" \
      -DCMAKE_BUILD_TYPE=Release >"$work/nats-configure.log" 2>&1 || { cat "$work/nats-configure.log"; fail "configure"; }
grep -q "$root/$libdir/cmake/athomic" "$work/nats/CMakeCache.txt" || fail "did not use the installed SDK"
cmake --build "$work/nats" >"$work/nats-build.log" 2>&1 || { cat "$work/nats-build.log"; fail "build"; }
cp "$work/nats/athomic_provider_nats.so" "$work/plugins/"
ATHOMIC_PLUGIN_PATH="$work/plugins" "$work/root/usr/bin/athomic" backends | grep -q "^Backends: local, nats, redis$" \
  || fail "installed tool does not see the new provider"

echo "== the tutorial's provider skeleton (docs/WRITING_A_PROVIDER.md), as written"
mkdir -p "$work/tutorial/plugins"
awk '/^```cmake$/{f=1;next} /^```$/{if(f){exit}} f' "$src/docs/WRITING_A_PROVIDER.md" >"$work/tutorial/CMakeLists.txt"
awk '/^```cpp$/{f=1;next} /^```$/{if(f){exit}} f' "$src/docs/WRITING_A_PROVIDER.md" >"$work/tutorial/mine.cpp"
cmake -S "$work/tutorial" -B "$work/tutorial/build" -DCMAKE_PREFIX_PATH="$root/usr" >"$work/tutorial.log" 2>&1 \
  && cmake --build "$work/tutorial/build" >>"$work/tutorial.log" 2>&1 || { cat "$work/tutorial.log"; fail "tutorial build"; }
cp "$work/tutorial/build/athomic_provider_mine.so" "$work/tutorial/plugins/"
out=$(ATHOMIC_PLUGIN_PATH="$work/tutorial/plugins" NALA_EVENTS__PROVIDER__BACKEND=mine \
      "$work/root/usr/bin/athomic" publish tutorial.works '{}' 2>&1) || { echo "$out"; fail "the tutorial provider"; }
grep -q "loaded provider 'mine'" <<<"$out" || fail "the tutorial provider was not loaded: $out"

echo "== build an application against the installed packages: the README's example"
mkdir -p "$work/app"
awk '/^```cpp$/{f=1;next} /^```$/{if(f){exit}} f' "$src/README.md" >"$work/app/main.cpp"
cat >"$work/app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(readme_example CXX)
find_package(athomic CONFIG REQUIRED)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE athomic::runtime)
CMAKE
cmake -S "$work/app" -B "$work/app/build" -DCMAKE_PREFIX_PATH="$root/usr" >"$work/app-configure.log" 2>&1 \
  || { cat "$work/app-configure.log"; fail "configure the application"; }
cmake --build "$work/app/build" >"$work/app-build.log" 2>&1 || { cat "$work/app-build.log"; fail "build the application"; }
LD_LIBRARY_PATH="$root/$libdir" "$work/app/build/app" >"$work/app.log" 2>&1 || { cat "$work/app.log"; fail "run the application"; }
grep -q "audit \[trace_id=trace-4711 tenant_id=acme\] Auditing creation of user user-123" "$work/app.log" \
  || { cat "$work/app.log"; fail "the README example did not audit in its publisher's context"; }

echo "== the same application through pkg-config"
pc=$(PKG_CONFIG_PATH="$root/$libdir/pkgconfig" pkg-config --cflags --libs athomic) || fail "pkg-config athomic"
g++ -o "$work/app/pc_app" "$work/app/main.cpp" $pc >"$work/pc-build.log" 2>&1 \
  || { echo "$pc"; cat "$work/pc-build.log"; fail "build the application with pkg-config"; }
LD_LIBRARY_PATH="$root/$libdir" "$work/app/pc_app" >"$work/pc-app.log" 2>&1 || { cat "$work/pc-app.log"; fail "run the pkg-config application"; }
grep -q "Auditing creation of user user-123" "$work/pc-app.log" || fail "the pkg-config application's output"

echo "== an Asio application against the installed packages: examples/asio_coroutines"
mkdir -p "$work/asio_app"
cp "$src/examples/asio_coroutines/main.cpp" "$work/asio_app/"
cat >"$work/asio_app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(asio_example CXX)
find_package(athomic CONFIG REQUIRED COMPONENTS asio)
find_package(CLI11 REQUIRED)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE athomic::asio CLI11::CLI11)
CMAKE
cmake -S "$work/asio_app" -B "$work/asio_app/build" -DCMAKE_PREFIX_PATH="$root/usr" >"$work/asio-configure.log" 2>&1 \
  || { cat "$work/asio-configure.log"; fail "configure the Asio application"; }
cmake --build "$work/asio_app/build" >"$work/asio-build.log" 2>&1 || { cat "$work/asio-build.log"; fail "build the Asio application"; }
(cd "$work/run" && LD_LIBRARY_PATH="$root/$libdir" "$work/asio_app/build/app") >"$work/asio-app.log" 2>&1 \
  || { cat "$work/asio-app.log"; fail "run the Asio application"; }
grep -q "3 order(s) placed, 3 audited" "$work/asio-app.log" || { cat "$work/asio-app.log"; fail "the Asio example's output"; }

echo "== the tarball"
tar -xzf "$work"/pkgs/athomic-*.tar.gz -C "$work/tgz"
top=$(ls -d "$work"/tgz/*/)
"$top/bin/athomic-demo" >"$work/tgz-demo.log" 2>&1 || { cat "$work/tgz-demo.log"; fail "demo from the tarball"; }
grep -q "Auditing creation of user user-123" "$work/tgz-demo.log" || fail "tarball demo output"
echo "PASS"
