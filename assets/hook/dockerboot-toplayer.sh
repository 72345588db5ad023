# dockerboot-toplayer.sh — the top layer laid over the new root, never through
# the image's symlinks.
# A part of dockerboot-core.sh (DESIGN §3), sourced by it from its own
# directory; defines functions only.  POSIX sh, busybox ash compatible,
# `set -u` clean; every name starts with _db like the core's.
# shellcheck shell=sh disable=SC2154,SC2015 # the core and its other parts set the _db_
# variables; "A && B || C" is meant so: C runs when A or B fails

# --- the top layer over the new root, never through the image's symlinks ---
# The new root is an image: its symlinks (etc/resolv.conf -> ../run/…,
# etc/localtime -> /usr/share/…, lib -> usr/lib, or a hostile etc/x -> /)
# point outside it once read from the initramfs.  So the copy walks the top
# layer itself and writes each entry at a real place inside the new root:
# a symlinked directory of the image is followed within the new root only
# (_db_follow), a file replaces a symlink (cp --remove-destination: never
# written through), a directory the image has keeps its mode and owner (only
# a directory new to the image is copied with its own), "." itself is never
# copied (/ keeps the image's mode), and the top layer's own symlinks are
# copied as symlinks.  One cp per top-layer directory, shell tests elsewhere,
# readlink only for an actual symlink: the hook's time is measured.

# _db_follow DIR TARGET: _db_T = where the symlink TARGET, found in the real
# directory DIR ('' = its /) of the root _db_fr (the new root for the top
# layer, an image's subvolume for the assessment), leads inside it: an
# absolute target starts at the new root, ".." stops there, symlinks met on
# the way are followed the same way (at most 40), components that do not
# exist are kept as they are.  _db_T is relative to _db_fr and has no
# symlink in it, but its last component may not exist.
_db_follow() {
    _db_hops=0
    case $2 in /*) _db_T= ;; *) _db_T=$1 ;; esac
    _db_rest=$2
    while [ -n "$_db_rest" ]; do
        _db_c=${_db_rest%%/*}
        case $_db_rest in */*) _db_rest=${_db_rest#*/} ;; *) _db_rest= ;; esac
        case $_db_c in
            '' | .) continue ;;
            ..) case $_db_T in */*) _db_T=${_db_T%/*} ;; *) _db_T= ;; esac; continue ;;
        esac
        _db_x=${_db_T:+$_db_T/}$_db_c
        if [ -L "$_db_fr/$_db_x" ]; then
            _db_hops=$((_db_hops + 1))
            [ "$_db_hops" -le 40 ] || return 1
            _db_l=$(readlink "$_db_fr/$_db_x") && [ -n "$_db_l" ] || return 1
            case $_db_l in /*) _db_T= ;; esac
            _db_rest=$_db_l${_db_rest:+/$_db_rest}
        else
            _db_T=$_db_x
        fi
    done
}

# _db_batch SRCDIR DESTDIR ENTRY…: copy the ENTRYs (paths in SRCDIR) that
# _db_walk does not walk into, into the new root's real directory DESTDIR.
# Where DESTDIR is SRCDIR's own path in the top layer (no symlink of the
# image on the way: every directory of it is a real one, checked by the
# walk), an entry whose path has only plain characters waits in _db_later
# for the one cp of _db_copy_top; the others go now, one cp for the lot.
_db_batch() {
    _db_bd=$_db_new${2:+/$2}
    _db_rel=${1#"$_db_tl"}
    _db_rel=${_db_rel#/}
    case $_db_rel in
        *[!A-Za-z0-9._@+/-]*) _db_rel=/ ;;      # never equal to a DESTDIR
    esac
    [ "$_db_rel" = "$2" ] || _db_rel=/
    shift 2
    for _db_e do
        shift
        [ -e "$_db_e" ] || [ -L "$_db_e" ] || continue      # a glob that matched nothing
        _db_d=$_db_bd/${_db_e##*/}
        [ -d "$_db_e" ] && [ ! -L "$_db_e" ] && { [ -e "$_db_d" ] || [ -L "$_db_d" ]; } && continue
        if [ "$_db_rel" != / ]; then
            case ${_db_e##*/} in
                *[!A-Za-z0-9._@+-]*) ;;
                *) _db_later="$_db_later ${_db_rel:+$_db_rel/}${_db_e##*/}"; continue ;;
            esac
        fi
        set -- "$@" "$_db_e"
    done
    [ "$#" = 0 ] && return 0
    _db_o=$("$_db_cp" -a --remove-destination "$@" "$_db_bd/" 2>&1) || _db_fail \
        "copying the top layer $_db_tlpath failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "fix or remove the file named there in the top layer"
}

# _db_walk SRCDIR DESTDIR: lay the top layer's directory SRCDIR over the new
# root's real directory DESTDIR ('' = /): first into each directory the
# image has, then one cp for everything else.  (The other order would walk
# again into the directories the cp has just made: a cp more for each.)
# Entries stay in "$@" after $1 $2 (the only variables a recursive call
# leaves alone), rotated through once: the empty word marks where the list
# started (a glob never gives one).
_db_walk() {
    set -- "$1" "$2" "$1"/* "$1"/.[!.]* "$1"/..?* ''
    while [ -n "$3" ]; do
        _db_e=$3 _db_d=${2:+$2/}${3##*/}
        if [ -d "$_db_e" ] && [ ! -L "$_db_e" ] && { [ -e "$_db_new/$_db_d" ] || [ -L "$_db_new/$_db_d" ]; }; then
            _db_T=$_db_d _db_go=1
            if [ -L "$_db_new/$_db_d" ]; then
                _db_l=$(readlink "$_db_new/$_db_d")
                _db_follow "$2" "$_db_l" || { _db_fail \
                    "the top layer's ${_db_e#"$_db_tl"/} meets a symlink loop in the image (/$_db_d)" \
                    "remove it from the top layer or fix the image's symlink"; return 1; }
                if [ ! -e "$_db_new/$_db_T" ] && [ ! -L "$_db_new/$_db_T" ]; then
                    # Where the link leads is new: the whole directory goes there.
                    case $_db_T in */*) mkdir -p "$_db_new/${_db_T%/*}" 2>/dev/null ;; esac
                    _db_o=$("$_db_cp" -a "$_db_e" "$_db_new/$_db_T" 2>&1) || { _db_fail \
                        "copying the top layer $_db_tlpath failed: $(printf '%s' "$_db_o" | tail -n 1)" \
                        "fix or remove the file named there in the top layer"; return 1; }
                    _db_go=0
                fi
            fi
            if [ "$_db_go" = 1 ]; then
                [ -d "$_db_new/$_db_T" ] && [ ! -L "$_db_new/$_db_T" ] || { _db_fail \
                    "the top layer's directory ${_db_e#"$_db_tl"/} is a file in the image (/$_db_T)" \
                    "remove it from the top layer or from the image"; return 1; }
                _db_walk "$_db_e" "$_db_T" || return 1
            fi
        fi
        _db_a=$1 _db_b=$2 _db_e=$3     # _db_e again: a recursive call changed it
        shift 3
        set -- "$_db_a" "$_db_b" "$@" "$_db_e"
    done
    _db_a=$1 _db_b=$2
    shift 3
    # The directories walked into exist in the new root: the batch skips them.
    _db_batch "$_db_a" "$_db_b" "$@"
}

# _db_copy_top: the whole top layer over the new root.  What waits in
# _db_later (paths of plain characters: no blank, no glob character, never
# an option after --) goes in one cp from the top layer, --parents placing
# each at its own path: its directories exist in the new root as real ones
# (cp makes none and leaves their mode and owner), so a top layer without
# symlinked directories of the image costs one cp, not one a directory.
_db_copy_top() {
    _db_tool cp
    _db_cp=$_db_tp _db_fr=$_db_new _db_later=
    case $- in *f*) _db_noglob=1; set +f ;; *) _db_noglob=0 ;; esac   # the walk globs
    _db_walk "$_db_tl" ''
    _db_rc=$?
    set -f
    # shellcheck disable=SC2086 # plain words, no glob (set -f)
    [ "$_db_rc" != 0 ] || [ -z "$_db_later" ] \
        || _db_o=$(cd "$_db_tl" && exec "$_db_cp" -a --parents --remove-destination -- \
            $_db_later "$_db_new/" 2>&1) || { _db_rc=1; _db_fail \
        "copying the top layer $_db_tlpath failed: $(printf '%s' "$_db_o" | tail -n 1)" \
        "fix or remove the file named there in the top layer"; }
    [ "$_db_noglob" = 1 ] || set +f
    return "$_db_rc"
}
