#!/bin/sh
# Layering (docs/architecture.md, layers): through a layer's include root (build/layers/<layer>) the
# headers of that layer and the layers below it compile, a higher layer's do not.
# usage: check_layers.sh <cc> <build dir> <source dir>
set -u
cc=$1
build=$2
src=$3
fail=0
probe() { # probe <layer> <header>
    printf '#include "%s"\n' "$2" |
        $cc -std=c11 -D_GNU_SOURCE -fsyntax-only -I"$src/include" -I"$build/layers/$1" -x c - \
            2>/dev/null
}
sees() {
    probe "$1" "$2" || { echo "$1 cannot include $2"; fail=1; }
}
blind() {
    ! probe "$1" "$2" || { echo "$1 can include $2, a higher layer"; fail=1; }
}
sees util util/str.h
blind util trace/span_int.h
sees trace util/str.h
sees trace trace/span_int.h
blind trace export/encode.h
sees export trace/span_int.h
blind export config/config_int.h
sees config export/encode.h
blind config gpu/gpu_int.h
sees gpu config/config_int.h
blind gpu serving/serving_int.h
blind serving gpu/gpu_int.h
blind cost server/server_int.h
sees server gpu/gpu_int.h
sees server serving/serving_int.h
[ $fail -eq 0 ] && echo ok
exit $fail
