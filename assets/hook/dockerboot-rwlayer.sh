# dockerboot-rwlayer.sh — the rw layer's name, its mark, what the hook may
# delete (_db_ours before every delete) and <rw>.previous.
# A part of dockerboot-core.sh (DESIGN §3), sourced by it from its own
# directory; defines functions only.  POSIX sh, busybox ash compatible,
# `set -u` clean; every name starts with _db like the core's.
# shellcheck shell=sh disable=SC2154 # the core and its other parts set the _db_ variables

# _db_check_rw RAW: refuse a rootflags=subvol= that could name anything but a
# root this hook makes; _db_rw = the normalized name.  Only names: it runs
# before anything is mounted.
_db_check_rw() {
    _db_use="use the rw layer's own name, e.g. rootflags=subvol=docker_rwlayer"
    _db_norm "$1" || { _db_fail "rootflags=subvol=$1 contains .." "$_db_use"; return 1; }
    _db_rw=$_db_n
    [ -n "$_db_rw" ] || { _db_fail "rootflags=subvol=$1 names the partition's top level, which the hook would delete" \
        "$_db_use"; return 1; }
    _db_norm "$_db_dpath" || _db_n=$_db_dpath
    _db_overlap "$_db_rw" "$_db_n" && { _db_fail \
        "rootflags=subvol=$1 is, holds or lies inside docker's data-root (docker_path=$_db_dpath), which the hook would delete" \
        "$_db_use"; return 1; }
    _db_norm "$_db_tlpath" || _db_n=$_db_tlpath
    # boot_docker holds kernel, initramfs and config: fixed name, and the top layer's directory.
    for _db_x in boot_docker "${_db_n%/*}" "$_db_n"; do
        [ -n "$_db_x" ] && _db_overlap "$_db_rw" "$_db_x" && { _db_fail \
            "rootflags=subvol=$1 is, holds or lies inside $_db_x (kernel, initramfs, top layer), which the hook would delete" \
            "$_db_use"; return 1; }
    done
    return 0
}

# _db_show PATH: PATH is a btrfs subvolume; _db_uuid, _db_puuid (- when it is
# no snapshot) and _db_flags (readonly or -) from `btrfs subvolume show`.
# The first line (the path) and the Snapshot(s) list are names: skipped.
_db_show() {
    _db_uuid='' _db_puuid='' _db_flags=
    _db_o=$(btrfs subvolume show "$1" 2>/dev/null) || return 1
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS=$_db_nl
    for _db_l in ${_db_o#*"$_db_nl"}; do
        _db_l=${_db_l#"${_db_l%%[! 	]*}"}
        case $_db_l in
            UUID:*) _db_uuid=${_db_l##*[ 	]} ;;
            'Parent UUID:'*) _db_puuid=${_db_l##*[ 	]} ;;
            Flags:*) _db_flags=${_db_l##*[ 	]} ;;
            Snapshot*) break ;;
        esac
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    [ -n "$_db_uuid" ]
}

# _db_marked PATH: PATH (below _db_top, no symlink) is a subvolume carrying
# this hook's mark.  v2: PATH is the root of the subvolume whose ID the mark
# names — _db_subvol_id (one stat), else one `btrfs inspect-internal
# subvolid-resolve` (the kernel puts that ID exactly at PATH); neither costs
# more with more subvolumes (docker makes one per layer).  v1 (older
# hooks): `btrfs subvolume show` gives PATH's UUID.
_db_marked() {
    [ -f "$1/$_db_mark" ] && [ ! -L "$1/$_db_mark" ] || return 1
    _db_l=
    { read -r _db_l <"$1/$_db_mark"; } 2>/dev/null
    case $_db_l in
        "$_db_magic2 "*)
            _db_x=${_db_l#"$_db_magic2 "}
            # A subvolume's ID: 256 or more (5 is the top level), no leading zero.
            case $_db_x in '' | 0* | *[!0-9]*) return 1 ;; esac
            [ "${#_db_x}" -le 18 ] && [ "$_db_x" -ge 256 ] || return 1
            if _db_subvol_id "$1"; then
                [ "$_db_svid" = "$_db_x" ]
            else
                _db_o=$(btrfs inspect-internal subvolid-resolve "$_db_x" "$_db_top" 2>/dev/null) \
                    && [ "$_db_o" = "${1#"$_db_top"/}" ]
            fi ;;
        "$_db_magic "*) _db_mk=$_db_l    # _db_show uses _db_l
            _db_show "$1" && [ "$_db_mk" = "$_db_magic $_db_uuid" ] ;;
        *) return 1 ;;
    esac
}

# _db_subvol_id PATH: _db_svid = the ID of the btrfs subvolume whose root is
# PATH (below _db_top, no symlink on the way); non-zero when this cannot be
# told (the callers then ask btrfs-progs).  btrfs mixes the ID of the
# subvolume holding a file into the filesystem ID statfs reports (its low
# 32 bits XORed with it: btrfs_statfs, fs/btrfs/super.c), so against the top
# level's (ID 5) it reads back; PATH is that subvolume's root when its
# parent lies in another one (a directory's parent is in its own subvolume
# unless it is the root).  One `stat -f` for the three: a busybox applet
# starts in a fraction of btrfs-progs' time (eight libraries) under a slow
# CPU, and the hook's time is measured.
_db_subvol_id() {
    _db_svid=
    _db_o=$(stat -f -c %i "$_db_top" "$1" "${1%/*}" 2>/dev/null) || return 1
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS=$_db_nl
    # shellcheck disable=SC2086 # a line a word
    set -- $_db_o
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    _db_hi0=-
    [ "$#" = 3 ] || return 1
    for _db_f in "$@"; do
        case $_db_f in '' | *[!0-9a-f]* | ?????????????????*) return 1 ;; esac
        case $_db_f in
            ?????????*) _db_hi=${_db_f%????????} ;;
            *) _db_hi= ;;
        esac
        [ "$_db_hi0" = - ] && _db_hi0=$_db_hi
        [ "$_db_hi" = "$_db_hi0" ] || return 1
    done
    _db_lo0=${1#"$_db_hi0"} _db_lo1=${2#"$_db_hi0"} _db_lo2=${3#"$_db_hi0"}
    # (_db_x is the caller's: the mark's ID.)
    _db_sv=$((0x$_db_lo1 ^ 0x$_db_lo0 ^ 5))
    [ "$_db_sv" -ge 256 ] && [ "$((0x$_db_lo2 ^ 0x$_db_lo0 ^ 5))" != "$_db_sv" ] || return 1
    _db_svid=$_db_sv
}

# _db_legacy: the subvolume just shown by _db_show is a rw layer made before
# marks existed.  Migration rule: the hook of the first release made rw
# layers without a mark, and refusing them would stop every installed
# machine at the emergency shell after an upgrade.  An unmarked one is
# accepted (and replaced by a marked one) only when it can be nothing else:
# its name passed _db_check_rw (not the top level, docker's data-root,
# boot_docker or the top layer, nor holding them), it is a subvolume (not a
# plain directory), writable, a snapshot (`btrfs subvolume create` makes
# none: a user's own subvolume is refused), and its origin lies inside
# docker's data-root or dockerboot's roots (boot_docker/roots) or no longer
# exists (docker deletes the layers of removed images).  A snapshot of anything else is refused.
_db_legacy() {
    [ "$_db_flags" != readonly ] && [ -n "$_db_puuid" ] && [ "$_db_puuid" != - ] || return 1
    _db_o=$(btrfs subvolume show -u "$_db_puuid" "$_db_top" 2>/dev/null) || return 0
    _db_o=${_db_o%%"$_db_nl"*}
    _db_o=${_db_o#'<FS_TREE>/'}
    # A snapshot of dockerboot's copy of an image (dockerboot-roots.sh) is
    # one of an image as well: a fallback boot's .new cut short by a power loss.
    case $_db_o/ in boot_docker/roots/?*) return 0 ;; esac
    _db_norm "$_db_dpath" || return 1
    case $_db_o/ in "$_db_n"/?*) return 0 ;; esac
    return 1
}

# _db_ours PATH: PATH is a rw layer this hook made (_db_own=1: its mark) or a
# legacy one (_db_own=0); else one line and non-zero.  Nothing is ever
# deleted without it.
_db_ours() {
    _db_own=1
    [ ! -L "$1" ] && _db_marked "$1" && return 0
    _db_own=0
    [ ! -L "$1" ] && _db_show "$1" && _db_legacy && return 0
    _db_fail "${1#"$_db_top"/} was not made by dockerboot" \
        "nothing was deleted (no $_db_mark mark); if it is yours choose another rootflags=subvol=, if it is an old root delete it by hand (mount the partition with -o subvolid=5, btrfs subvolume delete)"
}

# _db_delete PATH: delete the rw layer PATH (checked by _db_ours) and the
# subvolumes nested in it (the booted system's, e.g. systemd's
# /var/lib/machines and /var/lib/portables), which make a plain delete
# fail.  find walks PATH without following symlinks, deepest first
# (-depth); inode 256 is a subvolume's root and no other directory's; names
# are never split (-exec).  A read-only PATH (<rw>.previous) keeps the
# entries of what is nested in it (EROFS): it is made writable first, and
# the nested ones go in one btrfs call (-exec {} +).  A read-only nested
# one (rare) needs them all writable first, top down, one call each.  Only
# on these slow paths (PATH is ours: all of it goes).
_db_delete() {
    btrfs subvolume delete "$1" >/dev/null 2>&1 && return 0
    btrfs property set -ts "$1" ro false >/dev/null 2>&1
    find "$1" -mindepth 1 -depth -type d -inum 256 -exec btrfs subvolume delete {} + >/dev/null 2>&1
    btrfs subvolume delete "$1" >/dev/null 2>&1 && return 0
    find "$1" -type d -inum 256 -exec btrfs property set -ts {} ro false \; >/dev/null 2>&1
    find "$1" -mindepth 1 -depth -type d -inum 256 -exec btrfs subvolume delete {} \; >/dev/null 2>&1
    btrfs subvolume delete "$1" >/dev/null 2>&1
}

# _db_remove PATH: delete PATH if it exists and this hook made it.
_db_remove() {
    [ -e "$1" ] || [ -L "$1" ] || return 0
    _db_ours "$1" || return 1
    _db_delete "$1" || _db_fail "${1#"$_db_top"/} cannot be deleted" \
        "delete it by hand (btrfs subvolume delete) from the emergency shell"
}

# _db_prev_name: <rw>.previous (_db_prev) is a name the hook may use: it is
# not, does not hold and does not lie inside docker's data-root, boot_docker,
# the top layer or the state directory (as _db_check_rw for <rw>; the name
# ends in .previous, so it is never the top level).  Else _db_x = what it
# overlaps and non-zero.
_db_prev_name() {
    _db_pv=${_db_prev#"$_db_top"/}
    _db_norm "$_db_dpath" || _db_n=$_db_dpath
    _db_x=$_db_n
    _db_overlap "$_db_pv" "$_db_x" && return 1
    _db_norm "$_db_tlpath" || _db_n=$_db_tlpath
    for _db_x in boot_docker "${_db_n%/*}" "$_db_n" "${_db_state:-}"; do
        [ -n "$_db_x" ] && _db_overlap "$_db_pv" "$_db_x" && return 1
    done
    return 0
}

# _db_previous: before the swap, make room for the rw layer (_db_rwp,
# checked by _db_ours) as <rw>.previous, read-only, for one boot: a file
# lost at the reboot can still be copied out of it.  The one of the boot
# before goes first, and only if this hook made it (its mark, as _db_ours
# checks before every delete).  Then the rw layer gets its ro flag (the
# flag first, the rename last: .previous is never writable) and _db_aside =
# .previous: the swap renames it there directly (_db_unro=1: on a failed
# swap _db_writable takes the flag off again).  Never fails the boot:
# whatever stands in the way (a .previous that is not ours, a name
# overlapping what the hook never touches, a failed ro flag) leaves one
# warning in _db_note and _db_aside as it was (.old: deleted after the
# swap, as before).  dockerboot.previous=0 (_db_keep=0): an ours .previous
# is deleted (the space comes back), none is made, and a .previous that is
# not ours is none of the hook's business (no warning).
_db_previous() {
    _db_prev=$_db_rwp.previous
    _db_pw="warning: $_db_rw.previous"
    _db_prev_name || { [ "$_db_keep" = 0 ] || _db_note="${_db_note:+$_db_note; }$_db_pw is, holds or lies inside $_db_x: the last root is not kept"
        return 0; }
    # Kept on: replaced only by a newer root (none on a first boot).
    [ "$_db_keep" = 0 ] || [ -n "$_db_aside" ] || return 0
    if [ -e "$_db_prev" ] || [ -L "$_db_prev" ]; then
        # _db_ours without its legacy rule: no release made an unmarked
        # .previous, and a snapshot whose origin is gone is no proof.
        if [ -L "$_db_prev" ] || ! _db_marked "$_db_prev"; then
            [ "$_db_keep" = 0 ] || _db_note="${_db_note:+$_db_note; }$_db_pw was not made by dockerboot: left as it is, the last root is not kept"
            return 0
        fi
        _db_delete "$_db_prev" || { _db_note="${_db_note:+$_db_note; }$_db_pw cannot be deleted (tried again next boot): the last root is not kept"
            return 0; }
    fi
    [ "$_db_keep" = 1 ] || return 0
    # Only a marked root (_db_rwm): a read-only unmarked one (a legacy root of
    # the first release, which _db_legacy accepts only writable) would never be
    # ours again.
    [ "$_db_rwm" = 1 ] || return 0
    # Flag and rename keep the subvolume's ID (and UUID), so its mark stays
    # valid.  The rename itself is the swap's (one mv less).
    if btrfs property set -ts "$_db_rwp" ro true >/dev/null 2>&1; then
        _db_unro=1
        if [ ! -e "$_db_prev" ] && [ ! -L "$_db_prev" ]; then
            _db_aside=$_db_prev
            return 0
        fi
    fi
    _db_note="${_db_note:+$_db_note; }$_db_pw: cannot make the last root read-only or rename it, it is not kept"
    return 0
}

# _db_writable PATH: after a failed swap, the rw layer back at PATH loses
# the ro flag _db_previous gave it (_db_unro=1), so that it boots as before.
_db_writable() {
    [ "$_db_unro" = 0 ] || btrfs property set -ts "$1" ro false >/dev/null 2>&1
    _db_unro=0
    return 0
}
