#!/bin/sh
# Builds the Debian package from the install tree: scripts/mkdeb.sh BUILD_DIR VERSION
# (make deb). The tree is `make install` with Debian's paths, the binary stripped (its debug
# symbols stay in BUILD_DIR/rel/outpost), man pages and changelog compressed; Depends comes
# from dpkg-shlibdeps (the libraries the binary links, at the versions their symbols need);
# files are owned by root in the archive without fakeroot (dpkg-deb --root-owner-group).
# Writes BUILD_DIR/deb/outpost_VERSION-1_ARCH.deb and prints its path.
set -eu
build="$1"; version="$2"
revision="${version}-1"
arch="$(dpkg --print-architecture)"
top="$(pwd)"
work="$build/deb"
root="$work/root"
rm -rf "$work"
mkdir -p "$root"
make --no-print-directory -s install DESTDIR="$top/$root" PREFIX=/usr SYSCONFDIR=/etc \
  UNITDIR=/lib/systemd/system SYSUSERSDIR=/usr/lib/sysusers.d >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/outpost"
gzip -9n "$root/usr/share/man/man1/outpost.1" "$root/usr/share/man/man8/"*.8
doc="$root/usr/share/doc/outpost"
cp dist/debian/copyright "$doc/copyright"
sed "s/@VERSION@/$revision/" dist/debian/changelog | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.Debian.gz"

# Depends: what the binary links, as dpkg-shlibdeps computes it (it wants a debian/control)
shl="$work/shlibdeps"
mkdir -p "$shl/debian"
printf 'Source: outpost\n\nPackage: outpost\nArchitecture: any\n' > "$shl/debian/control"
depends="$(cd "$shl" && dpkg-shlibdeps -O "$top/$root/usr/bin/outpost" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')"
[ -n "$depends" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

mkdir -p "$root/DEBIAN"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$revision/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" \
  -e "s/@SIZE@/$size/" dist/debian/control > "$root/DEBIAN/control"
for f in postinst prerm postrm; do install -m 0755 "dist/debian/$f" "$root/DEBIAN/$f"; done
install -m 0644 dist/debian/conffiles "$root/DEBIAN/conffiles"
(cd "$root" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' |
  sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +
deb="$work/outpost_${revision}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
