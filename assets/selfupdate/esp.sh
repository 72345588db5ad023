# shellcheck shell=sh disable=SC2154,SC2034 # run, say, die (and esp_mounted, for cleanup) are dockerboot-update's
# shellcheck disable=SC2015 # "a && b || die": die is meant when either fails
# dockerboot-update: the ESP and the files written on it, for every bootloader.
# Sourced by dockerboot-update (POSIX sh).
#
# The wizard's rules (wizard/loaders/esp_files.py, wizard/common/atomic.py):
# a file on the ESP is the wizard's while EFI/dockerboot/owned records the
# SHA-256 of its bytes ("-": any bytes, GRUB's count); every write is temp +
# sync + rename in the same directory, never through a symbolic link, with a
# backup named <name>.dockerboot-<UTC stamp>[-N].bak where one is kept.

OWNED_REL=EFI/dockerboot/owned

# find_esp PRED [ro]: esp = the root of the FAT filesystem for which the
# function PRED DIR says yes: the test hook DOCKERBOOT_ESP (a directory),
# else each vfat mounted already (/boot/efi…), else each vfat device in
# turn, mounted read-write (read-only with ro) at $run/esp and unmounted on
# exit.  Non-zero when there is none.
find_esp() {
    esp=''
    if [ -n "${DOCKERBOOT_ESP:-}" ]; then
        "$1" "$DOCKERBOOT_ESP" || return 1
        esp=$DOCKERBOOT_ESP; return 0
    fi
    while read -r _ m fstype _; do
        [ "$fstype" = vfat ] && "$1" "$m" && { esp=$m; return 0; }
    done </proc/mounts
    mkdir -p "$run/esp"
    for dev in $(blkid -t TYPE=vfat -o device 2>/dev/null); do
        mount -t vfat ${2:+-o "$2"} "$dev" "$run/esp" 2>/dev/null || continue
        esp_mounted=$run/esp
        "$1" "$run/esp" && { esp=$run/esp; return 0; }
        umount "$run/esp"; esp_mounted=''
    done
    return 1
}

sha() { sha256sum <"$1" | cut -d ' ' -f 1; }

# no_link REL: refuse a path on the ESP any directory of which is a symbolic
# link (a write would land outside the ESP), as esp_files.target does.
no_link() {
    p=$esp r=${1%/*}
    [ "$r" = "$1" ] && return 0
    set -f
    IFS_=$IFS IFS=/
    # shellcheck disable=SC2086 # split at the slashes, no globbing
    set -- $r
    IFS=$IFS_
    set +f
    for d; do
        p=$p/$d
        [ -L "$p" ] && die "$p is a symbolic link: dockerboot-update never writes through one" \
            "make it a plain directory, then run again"
    done
    return 0
}

# owned_ok REL: REL on the ESP is absent, or a plain file whose bytes owned
# records for REL (esp_files.mine): the wizard may replace or remove it.
owned_ok() {
    no_link "$1"
    [ -e "$esp/$1" ] || [ -L "$esp/$1" ] || return 0
    [ -f "$esp/$1" ] && [ ! -L "$esp/$1" ] || return 1
    grep -qxF -e "$(sha "$esp/$1") $1" -e "- $1" "$esp/$OWNED_REL" 2>/dev/null
}

# owned_edit FILE REL DIGEST...: the owned text FILE with REL's digests
# replaced by DIGEST... (none: REL gone), sorted as esp_files.owned_bytes
# sorts, to stdout.
owned_edit() {
    f=$1 rel=$2; shift 2
    {
        while IFS= read -r line; do
            case $line in *" $rel") ;; *) printf '%s\n' "$line" ;; esac
        done <"$f"
        for d; do printf '%s %s\n' "$d" "$rel"; done
    } | LC_ALL=C sort -u -k2,2 -k1,1
}

# owned_now FILE: a copy of owned as it is into FILE (empty when there is none).
owned_now() {
    if [ -f "$esp/$OWNED_REL" ] && [ ! -L "$esp/$OWNED_REL" ]; then cp "$esp/$OWNED_REL" "$1"; else : >"$1"; fi
}

# owned_old REL: the digest of REL's bytes now when owned names REL at all
# (esp_plan._digests keeps it until the write is done), else nothing.
owned_old() {
    [ -f "$esp/$1" ] && [ -f "$esp/$OWNED_REL" ] \
        && sed -n 's/^[^ ]* //p' "$esp/$OWNED_REL" | grep -qxF -- "$1" && sha "$esp/$1"
    return 0
}

# owned_write FILE: FILE becomes owned (atomic, no backup: the wizard's own list).
owned_write() { put_file "$esp/$OWNED_REL" "$1" 0; }

# esp_space BYTES: refuse, before anything is written, an ESP with less room.
esp_space() {
    # shellcheck disable=SC2046 # the fields of df's one line
    set -- "$1" $(df -Pk "$esp" 2>/dev/null | tail -n 1)
    [ $# -ge 5 ] && [ "$5" -ge $((($1 + 1023) / 1024)) ] || die \
        "no space on the ESP $esp for the boot entries and their backups (${5:-?} KiB free, $((($1 + 1023) / 1024)) KiB needed)" \
        "free space on the ESP, then run again"
}

# put_file TARGET SRC BACKUP: TARGET replaced by a copy of SRC (temp + sync +
# rename, its directory made first); with BACKUP=1 the bytes it had are kept
# as $bak (atomic.backup_path's name), the newest KEEP_BAKS of them.  Equal
# bytes: nothing written.  Never through a symbolic link.
put_file() {
    dir=${1%/*} name=${1##*/} bak=''
    [ -L "$1" ] && die "$1 is a symbolic link: dockerboot-update never writes through one" "move it away, then run again"
    [ -f "$1" ] && cmp -s "$1" "$2" && return 0
    [ -d "$dir" ] || mkdir -p "$dir" || die "cannot make $dir" "mount it read-write and run again"
    [ "$3" = 1 ] && [ -f "$1" ] && backup_name
    # The temp file is named as write_atomic names its own (.<name>.XXXXXXXX.tmp):
    # one a kill left behind goes here, or at the wizard's next write.
    for f in "$dir/.$name".????????.tmp; do
        s=${f#"$dir/.$name."} && s=${s%.tmp}
        case $s in *[!A-Za-z0-9_]*) continue ;; esac
        { [ -f "$f" ] && [ ! -L "$f" ]; } && rm -f -- "$f"
    done
    tmp=$dir/.$name.$(printf '%08d' "$$").tmp
    { [ ! -e "$tmp" ] && [ ! -L "$tmp" ]; } || die "$tmp is in the way" "remove it, then run again"
    { [ -z "$bak" ] || { cp "$1" "$bak" && sync "$bak"; }; } && cp "$2" "$tmp" && sync "$tmp" \
        && mv -f "$tmp" "$1" && sync "$dir" \
        || { rm -f -- "$tmp"; die "cannot write $1" "mount it read-write and run again"; }
    [ -z "$bak" ] || prune_baks
}

# backup_name: bak = <dir>/<name>.dockerboot-<UTC stamp>[-N].bak as
# atomic.backup_path names it: later than every backup of this second (-N
# above the highest), and never a name taken by anything, a dangling symlink
# too (cp would write where it points).
backup_name() {
    base=$dir/$name.dockerboot-$(date -u +%Y%m%dT%H%M%SZ) n=0
    for f in "$base".bak "$base"-*.bak; do
        { [ -e "$f" ] || [ -L "$f" ]; } || continue
        s=${f#"$base"} && s=${s%.bak} && s=${s#-}
        while :; do case $s in 0?*) s=${s#0} ;; *) break ;; esac; done   # 08 is no octal
        case $s in *[!0-9]*|??????????*) continue ;; esac
        [ "${s:-0}" -lt "$n" ] || n=$((${s:-0} + 1))
    done
    bak=$base.bak
    [ "$n" = 0 ] || bak=$base-$n.bak
    while [ -e "$bak" ] || [ -L "$bak" ]; do n=$((n + 1)) bak=$base-$n.bak; done
}

# prune_baks: as the wizard's atomic.prune_backups (KEEP_BAKS is its
# KEEP_BACKUPS): of the regular files named exactly
# <name>.dockerboot-<UTC stamp>[-N].bak, the one just written ($bak) and the
# newest others by stamp, then N, stay, KEEP_BAKS in all (a clock behind the
# newest stamp never costs the backup just made).  A symlink, or any other
# name (a user's refind.conf.bak), is never touched.
KEEP_BAKS=3
prune_baks() {
    list=''
    for f in "$dir/$name".dockerboot-*.bak; do
        { [ "$f" != "$bak" ] && [ -f "$f" ] && [ ! -L "$f" ]; } || continue
        s=${f#"$dir/$name".dockerboot-} && s=${s%.bak}
        st=${s%%-*} sn=0
        case $s in *-*) sn=${s#*-} ;; esac
        case $st in [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) ;; *) continue ;; esac
        case $sn in ''|*[!0-9]*) continue ;; esac
        list="$list$st $sn $s.bak$NL"
    done
    [ -n "$list" ] || return 0
    drop=$(($(printf '%s' "$list" | wc -l) - (KEEP_BAKS - 1)))
    [ "$drop" -gt 0 ] || return 0
    printf '%s' "$list" | LC_ALL=C sort -k1,1 -k2,2n | head -n "$drop" | while read -r _ _ s; do
        f=$dir/$name.dockerboot-$s
        { [ -f "$f" ] && [ ! -L "$f" ]; } && rm -f -- "$f"
    done
    sync "$dir"
}
