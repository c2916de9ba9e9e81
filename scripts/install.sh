#!/bin/sh
# Installs kontext from this unpacked tarball under PREFIX (default /usr/local):
#   PREFIX/bin/kontext -> ../lib/kontext/kontext, PREFIX/lib/kontext/{kontext,kontext-cli},
#   the man page, and bash, zsh and fish completions under PREFIX/share.
# Usage: ./install.sh [PREFIX=DIR | --prefix DIR]   (PREFIX may also come from the environment)
# kontext-cli needs libsecret-1-0, libcurl4 and libsqlite3-0 (Debian's names); it needs no Swift.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-/usr/local}
while [ $# -gt 0 ]; do
    case $1 in
        PREFIX=*) prefix=${1#PREFIX=} ;;
        --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift ;;
        --prefix=*) prefix=${1#--prefix=} ;;
        -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case $prefix in
    /*) ;;
    *) echo "install.sh: PREFIX must be an absolute path, not '$prefix'" >&2; exit 2 ;;
esac

for file in lib/kontext/kontext lib/kontext/kontext-cli share/man/man1/kontext.1.gz \
    share/bash-completion/completions/kontext share/zsh/site-functions/_kontext \
    share/fish/vendor_completions.d/kontext.fish share/doc/kontext/copyright; do
    mode=644
    case $file in lib/kontext/*) mode=755 ;; esac
    install -D -m "$mode" "$here/$file" "$prefix/$file"
done
mkdir -p "$prefix/bin"
ln -sfn ../lib/kontext/kontext "$prefix/bin/kontext"

# Say which system libraries are missing rather than fail at the first command.
if command -v ldd >/dev/null 2>&1; then
    missing=$(ldd "$prefix/lib/kontext/kontext-cli" 2>/dev/null | awk '/not found/ { print $1 }')
    if [ -n "$missing" ]; then
        echo "install.sh: kontext-cli needs these libraries, not found on this system:" >&2
        echo "$missing" | sed 's/^/  /' >&2
        echo "  (Debian/Ubuntu: apt-get install libsecret-1-0 libcurl4 libsqlite3-0)" >&2
    fi
fi
echo "kontext installed in $prefix: $prefix/bin/kontext"
