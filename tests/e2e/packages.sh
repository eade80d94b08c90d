#!/usr/bin/env bash
# The packages, as a user gets them: build them with CPack, extract the .deb files into an empty
# root with dpkg -x (and the .tar.gz elsewhere), run the extracted tools from there, and build a
# provider plugin (plugins/nats) against the extracted SDK alone.
# Usage: packages.sh <athomic build dir> <source dir>
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work="$build/e2e-packages"
rm -rf "$work"
mkdir -p "$work/root" "$work/tgz" "$work/plugins" "$work/run"
fail() { echo "FAIL: $*"; exit 1; }

echo "== cpack"
(cd "$build" && cpack -B "$work/pkgs") >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; fail "cpack"; }
ls "$work/pkgs"/*.deb "$work/pkgs"/*.tar.gz
for p in libathomic0 athomic-provider-redis libathomic-dev; do
  deb=$(ls "$work/pkgs/${p}_"*.deb) || fail "no package $p"
  echo "$p: $(dpkg-deb -f "$deb" Depends)"
done
# (captured first: grep -q would close the pipe under dpkg-deb)
runtime_deps=$(dpkg-deb -f "$work"/pkgs/libathomic0_*.deb Depends)
redis_deps=$(dpkg-deb -f "$work"/pkgs/athomic-provider-redis_*.deb Depends)
runtime_files=$(dpkg-deb -c "$work"/pkgs/libathomic0_*.deb)
dev_files=$(dpkg-deb -c "$work"/pkgs/libathomic-dev_*.deb)
grep -q libspdlog <<<"$runtime_deps" || fail "runtime does not depend on spdlog"
# The redis provider links no client library (it speaks RESP itself): its dependencies are the
# runtime and what dpkg-shlibdeps finds.
grep -q 'libathomic0' <<<"$redis_deps" || fail "redis package does not depend on the runtime"
grep -q 'libc6' <<<"$redis_deps" || fail "redis package lacks its shared-library dependencies"
grep -q 'athomic/plugins/athomic_provider_local.so' <<<"$runtime_files" || fail "local provider not in the runtime package"
grep -q 'athomic_provider_redis.so' <<<"$runtime_files" && fail "redis provider in the runtime package"
grep -q 'include/athomic/sdk/provider.h' <<<"$dev_files" || fail "SDK header not in the dev package"
grep -q 'bin/athomic-conformance' <<<"$dev_files" || fail "conformance suite not in the dev package"
for doc in ARCHITECTURE CONFIGURATION WRITING_A_PROVIDER BENCHMARKS; do
  grep -q "usr/share/doc/athomic/$doc.md" <<<"$dev_files" || fail "docs/$doc.md not in the dev package"
done

echo "== dpkg -x into an empty root"
for deb in "$work"/pkgs/*.deb; do dpkg -x "$deb" "$work/root"; done
cd "$work/run"   # no settings file here: defaults
"$work/root/usr/bin/athomic" backends | tee "$work/backends.txt"
grep -q "^Backends: local, redis$" "$work/backends.txt" || fail "extracted tool does not find its plugins"
grep -q "$work/root/usr/lib/athomic/plugins" "$work/backends.txt" || fail "plugins not found next to the extracted library"
"$work/root/usr/bin/athomic-demo" >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; fail "extracted demo"; }
grep -q "\[trace_id=trace-4711 tenant_id=acme\] Auditing creation of user user-123" "$work/demo.log" || fail "demo output"

echo "== build a provider against the extracted SDK"
cmake -S "$src/plugins/nats" -B "$work/nats" -DCMAKE_PREFIX_PATH="$work/root/usr" \
      -DCMAKE_BUILD_TYPE=Release >"$work/nats-configure.log" 2>&1 || { cat "$work/nats-configure.log"; fail "configure"; }
grep -q "$work/root/usr/lib/cmake/athomic" "$work/nats/CMakeCache.txt" || fail "did not use the extracted SDK"
cmake --build "$work/nats" >"$work/nats-build.log" 2>&1 || { cat "$work/nats-build.log"; fail "build"; }
cp "$work/nats/athomic_provider_nats.so" "$work/plugins/"
ATHOMIC_PLUGIN_PATH="$work/plugins" "$work/root/usr/bin/athomic" backends | grep -q "^Backends: local, nats, redis$" \
  || fail "extracted tool does not see the new provider"

echo "== the tutorial's provider skeleton (docs/WRITING_A_PROVIDER.md), as written"
mkdir -p "$work/tutorial/plugins"
awk '/^```cmake$/{f=1;next} /^```$/{if(f){exit}} f' "$src/docs/WRITING_A_PROVIDER.md" >"$work/tutorial/CMakeLists.txt"
awk '/^```cpp$/{f=1;next} /^```$/{if(f){exit}} f' "$src/docs/WRITING_A_PROVIDER.md" >"$work/tutorial/mine.cpp"
cmake -S "$work/tutorial" -B "$work/tutorial/build" -DCMAKE_PREFIX_PATH="$work/root/usr" >"$work/tutorial.log" 2>&1 \
  && cmake --build "$work/tutorial/build" >>"$work/tutorial.log" 2>&1 || { cat "$work/tutorial.log"; fail "tutorial build"; }
cp "$work/tutorial/build/athomic_provider_mine.so" "$work/tutorial/plugins/"
out=$(ATHOMIC_PLUGIN_PATH="$work/tutorial/plugins" NALA_EVENTS__PROVIDER__BACKEND=mine \
      "$work/root/usr/bin/athomic" publish tutorial.works '{}' 2>&1) || { echo "$out"; fail "the tutorial provider"; }
grep -q "loaded provider 'mine'" <<<"$out" || fail "the tutorial provider was not loaded: $out"

echo "== build an application against the extracted packages: the README's example"
mkdir -p "$work/app"
awk '/^```cpp$/{f=1;next} /^```$/{if(f){exit}} f' "$src/README.md" >"$work/app/main.cpp"
cat >"$work/app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(readme_example CXX)
find_package(athomic CONFIG REQUIRED)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE athomic::runtime)
CMAKE
cmake -S "$work/app" -B "$work/app/build" -DCMAKE_PREFIX_PATH="$work/root/usr" >"$work/app-configure.log" 2>&1 \
  || { cat "$work/app-configure.log"; fail "configure the application"; }
cmake --build "$work/app/build" >"$work/app-build.log" 2>&1 || { cat "$work/app-build.log"; fail "build the application"; }
LD_LIBRARY_PATH="$work/root/usr/lib" "$work/app/build/app" >"$work/app.log" 2>&1 || { cat "$work/app.log"; fail "run the application"; }
grep -q "audit \[trace_id=trace-4711 tenant_id=acme\] Auditing creation of user user-123" "$work/app.log" \
  || { cat "$work/app.log"; fail "the README example did not audit in its publisher's context"; }

echo "== an Asio application against the extracted packages: examples/asio_coroutines"
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
cmake -S "$work/asio_app" -B "$work/asio_app/build" -DCMAKE_PREFIX_PATH="$work/root/usr" >"$work/asio-configure.log" 2>&1 \
  || { cat "$work/asio-configure.log"; fail "configure the Asio application"; }
cmake --build "$work/asio_app/build" >"$work/asio-build.log" 2>&1 || { cat "$work/asio-build.log"; fail "build the Asio application"; }
(cd "$work/run" && LD_LIBRARY_PATH="$work/root/usr/lib" "$work/asio_app/build/app") >"$work/asio-app.log" 2>&1 \
  || { cat "$work/asio-app.log"; fail "run the Asio application"; }
grep -q "3 order(s) placed, 3 audited" "$work/asio-app.log" || { cat "$work/asio-app.log"; fail "the Asio example's output"; }

echo "== the tarball"
tar -xzf "$work"/pkgs/athomic-*.tar.gz -C "$work/tgz"
top=$(ls -d "$work"/tgz/*/)
"$top/bin/athomic-demo" >"$work/tgz-demo.log" 2>&1 || { cat "$work/tgz-demo.log"; fail "demo from the tarball"; }
grep -q "Auditing creation of user user-123" "$work/tgz-demo.log" || fail "tarball demo output"
echo "PASS"
