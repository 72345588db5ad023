# dockerboot-roots.sh — dockerboot's own read-only copies of the images it
# may fall back to, which no docker command can delete (DESIGN §4c: "the last
# good root is ours"), and the fallback order that uses them.
# A part of dockerboot-core.sh (DESIGN §3), sourced by it from its own
# directory; defines functions only.  POSIX sh, busybox ash compatible,
# `set -u` clean; every name starts with _db like the core's.
#
# A root is boot_docker/roots/<64 hex of the image ID>: a btrfs snapshot of
# the image's subvolume in docker's store (O(1): it shares every extent, and
# holds space only once docker deletes the image), read-only, carrying the
# rw layer's v2 mark (/.dockerboot-rwlayer naming its own subvolume ID,
# _db_marked): a user's subvolume, a copy, a symlink or a plain directory at
# that name is never used, replaced or deleted.  The hook makes one, once,
# for the last good image (state/good: at the first boot after the mark) and
# for the image of the generation the boot entry names (dockerboot.generation=
# -> boot_docker/gen/<n>/generation.json: the image its kernel was built
# from).  An everyday boot, both there, only tests two names: no process.
# Made under the name <hex>.new (writable: the mark is written, then the ro
# flag set, then the rename); a leftover .new of a power cut is deleted only
# when it carries the mark (one cut before the mark stays: a warning each
# boot until it is deleted by hand).  Collection (dockerboot-wizard's
# update/apply) deletes the ones no longer needed, only those carrying the mark.
#
# The fallback order when the configured image cannot boot (_db_fallback):
# the last good image in docker's store, its root, the generation's image in
# docker's store, its root — each only when bootable (_db_bootable).
# shellcheck shell=sh disable=SC2154 # the core and its other parts set the _db_ variables

_db_rdir=boot_docker/roots

# _db_roots_ok: the roots' directory is a name the hook may use: it does not
# overlap docker's data-root, the state directory or the top layer, and no
# symlink is on the way.  Names only (and the shell's tests): no process.
_db_roots_ok() {
    _db_norm "$_db_dpath" || _db_n=$_db_dpath
    _db_overlap "$_db_rdir" "$_db_n" && return 1
    _db_overlap "$_db_rdir" "$_db_state" && return 1
    _db_norm "$_db_tlpath" || _db_n=$_db_tlpath
    [ -n "$_db_n" ] && _db_overlap "$_db_rdir" "$_db_n" && return 1
    _db_nolink "$_db_rdir"
}

# _db_gen_image: _db_gimg = the image ID the generation of this boot entry
# (dockerboot.generation=, _db_gen) was built from, read from its record with
# the shell's read (no process); '' when unknown.  The record is JSON written
# with two blanks of indent (wizard and dockerboot-update alike): the
# top-level key is the line starting with exactly two blanks.
_db_gen_image() {
    _db_gimg=
    [ -n "$_db_gen" ] || return 0
    _db_x=boot_docker/gen/$_db_gen/generation.json
    _db_nolink "$_db_x" && [ -f "$_db_top/$_db_x" ] || return 0
    while IFS= read -r _db_l; do
        case $_db_l in '  "image_id": "sha256:'*'",' | '  "image_id": "sha256:'*'"')
            _db_l=${_db_l#*\"sha256:}; _db_l=${_db_l%%\"*}
            case $_db_l in *[!0-9a-f]*) ;; *) [ "${#_db_l}" = 64 ] && _db_gimg=sha256:$_db_l ;; esac
            break ;;
        esac
    done <"$_db_top/$_db_x" 2>/dev/null
    return 0
}

# _db_root_usable ID: dockerboot's root of the image ID is there, the
# hook's (its mark: one stat) and bootable; _db_sub = it, _db_ref = ID.
_db_root_usable() {
    [ "$_db_roots" = 1 ] || return 1
    _db_rp=$_db_top/$_db_rdir/${1#sha256:}
    [ -d "$_db_rp" ] && [ ! -L "$_db_rp" ] && _db_marked "$_db_rp" || return 1
    _db_ref=$1 _db_sub=$_db_rp
    _db_bootable "$_db_rp"
}

# _db_try ID WHAT KIND: the image ID boots in the fallback when bootable, from
# docker's store, else from dockerboot's root of it; _db_bid, _db_sub,
# _db_ref, _db_fbw (words for the one line and the login message) and
# _db_from (what booted: KIND or KIND-root) are set then.
_db_try() {
    [ -n "$1" ] && [ "$1" != "$_db_conf" ] || return 1
    if _db_resolve "$_db_data" "$1" && _db_bootable "$_db_sub"; then
        _db_fbw=$2 _db_from=$3
    elif _db_root_usable "$1"; then
        _db_fbw="dockerboot's copy of $2" _db_from=$3-root
    else
        return 1
    fi
    _db_bid=$1
}

# _db_fallback: the image to boot when the configured one cannot (order
# above); non-zero when none can.  Quiet: the caller says the one line.  A
# configured image that only ran out of tries (_db_out) gives way to the
# last good image alone: the generation's was never proven either, and the
# configured one still boots then (dockerboot-assess.sh).
_db_fallback() {
    _db_try "$_db_good" "the last good image" good && return 0
    [ "$_db_out" = 0 ] && [ "$_db_gimg" != "$_db_good" ] || return 1
    _db_try "$_db_gimg" "the image of generation $_db_gen" generation
}

# _db_roots_keep: after the swap, make the roots this boot still lacks: the
# last good image's and the generation's.  Never fails the boot: a root that
# cannot be made is a warning, tried again next boot.
_db_roots_keep() {
    if [ "$_db_roots" != 1 ]; then
        [ -z "$_db_good$_db_gimg" ] \
            || _db_note="${_db_note:+$_db_note; }warning: $_db_rdir goes through a symlink or overlaps docker's data-root, the state directory or the top layer: no copy of the fallback images is kept"
        return 0
    fi
    _db_kref=$_db_ref _db_ksub=$_db_sub _db_quiet=1
    for _db_k in "$_db_good" "$_db_gimg"; do
        [ -n "$_db_k" ] || continue
        _db_rp=$_db_top/$_db_rdir/${_db_k#sha256:}
        { [ -e "$_db_rp" ] || [ -L "$_db_rp" ]; } && continue
        # The image's subvolume: this boot's when it booted from the store.
        if [ "$_db_k" = "$_db_bid" ] && case $_db_from in *-root) false ;; esac; then
            _db_sub=$_db_ksub
        else
            _db_resolve "$_db_data" "$_db_k" || continue
        fi
        _db_root_make || _db_note="${_db_note:+$_db_note; }warning: cannot keep a copy of image ${_db_k#sha256:} in $_db_rdir (tried again next boot)"
    done
    _db_quiet=0 _db_ref=$_db_kref _db_sub=$_db_ksub
    return 0
}

# _db_root_make: _db_rp = a read-only, marked snapshot of _db_sub, made
# under <rp>.new (a leftover one deleted only if marked).
_db_root_make() {
    _db_rn=$_db_rp.new
    # Only a marked leftover is the hook's (no legacy rule here: an unmarked
    # snapshot at that name may be anybody's; it stays, and so no copy).
    if [ -e "$_db_rn" ] || [ -L "$_db_rn" ]; then
        # shellcheck disable=SC2015 # any of the three failing: no copy
        [ ! -L "$_db_rn" ] && _db_marked "$_db_rn" && _db_delete "$_db_rn" || return 1
    fi
    # shellcheck disable=SC2174 # -m for roots/ itself; boot_docker is there already
    [ -d "${_db_rp%/*}" ] || mkdir -p -m 0700 "${_db_rp%/*}" 2>/dev/null || return 1
    btrfs subvolume snapshot "$_db_sub" "$_db_rn" >/dev/null 2>&1 || return 1
    # The same mark as the rw layer's: the snapshot's own ID.
    # shellcheck disable=SC2015 # any failure: the half-made .new goes
    { { _db_subvol_id "$_db_rn" || _db_svid=$(btrfs inspect-internal rootid "$_db_rn" 2>/dev/null); } \
        && case $_db_svid in '' | 0* | *[!0-9]*) false ;; esac && [ "$_db_svid" -ge 256 ] \
        && { [ ! -e "$_db_rn/$_db_mark" ] && [ ! -L "$_db_rn/$_db_mark" ] || rm -f "$_db_rn/$_db_mark"; } \
        && { printf '%s\n' "$_db_magic2 $_db_svid" >"$_db_rn/$_db_mark"; } 2>/dev/null \
        && btrfs property set -ts "$_db_rn" ro true >/dev/null 2>&1 \
        && mv "$_db_rn" "$_db_rp" 2>/dev/null; } || { _db_delete "$_db_rn"; return 1; }
}
