# dockerboot-stale.sh — after a failed run, the root of the boot before says
# what it is.  When dockerboot_main fails, the adapter opens the emergency
# shell; leaving it lets the generator mount rootflags=subvol=<rw>: the rw
# layer of the boot before, unchanged.  Its /etc/dockerboot/boot, written at
# that boot, names that boot's image, and dockerboot-mark-good in the booted
# system would mark it good (good, attempt reset, failed dropped) though this
# boot never prepared it: a bad image still being tried would become the
# fallback.  So that file is rewritten to say "stale=<why>" and no id=
# (mark-good then marks nothing), and the login message says it.
# A part of dockerboot-core.sh (DESIGN §3), sourced by it from its own
# directory; defines functions only.  POSIX sh, busybox ash compatible,
# `set -u` clean; every name starts with _db like the core's.
# shellcheck shell=sh disable=SC2154 # the core and its other parts set the _db_ variables

# _db_q TEXT: _db_v = TEXT in single quotes for a shell script (the login
# messages: this part's and the fallback's of dockerboot-assess.sh).
_db_q() {
    _db_v='' _db_rest=$1
    while :; do
        case $_db_rest in
            *\'*) _db_v="$_db_v${_db_rest%%\'*}'\\''"; _db_rest=${_db_rest#*\'} ;;
            *) _db_v="'$_db_v$_db_rest'"; return 0 ;;
        esac
    done
}

# _db_sdir REL: _db_T = the real directory REL of the stale root _db_fr,
# resolved inside it (_db_follow: a symlink never leads out of it), made
# when missing.  Non-zero when it is no directory or cannot be made.
_db_sdir() {
    _db_follow '' "$1" || return 1
    [ -d "$_db_fr/$_db_T" ] || mkdir -p "$_db_fr/$_db_T" 2>/dev/null
}

# _db_sput DIR NAME TEXT: DIR/NAME (DIR real, from _db_sdir) = TEXT, written
# whole: into a file of its own first, then renamed over DIR/NAME, so that
# a full disk leaves DIR/NAME as it was.  A symlink at DIR/NAME is removed
# first (never written through, and mv would move into a directory it
# names); a directory there is left (non-zero).
_db_sput() {
    _db_y=$1/.$2.dockerboot-new
    { { [ ! -e "$_db_y" ] && [ ! -L "$_db_y" ]; } || rm -f "$_db_y"; } 2>/dev/null \
        && { printf '%s' "$3" >"$_db_y"; } 2>/dev/null \
        && { [ ! -L "$1/$2" ] || rm -f "$1/$2" 2>/dev/null; } && [ ! -d "$1/$2" ] \
        && mv -f "$_db_y" "$1/$2" 2>/dev/null && return 0
    rm -f "$_db_y" 2>/dev/null
    return 1
}

# _db_stale: called by dockerboot_main after a failure (_db_err holds its
# one line), before the top level is unmounted.  Only when the top level is
# mounted (the rw name passed _db_check_rw), the rw name goes through no
# symlink and the rw layer is this hook's (_db_ours, as before a delete):
# nothing else is ever written.  Its etc/dockerboot/boot becomes
# "stale=<why>", then its etc/profile.d/dockerboot-fallback.sh (the
# fallback's message, which a boot of the hook removes again) says it at
# login.  Silent: the failure's one line stays the only one.  What cannot
# be written (a read-only rw layer, a full disk) leaves the rest as it is.
_db_stale() {
    [ "${_db_root_mounted:-0}" = 1 ] || return 0
    _db_fr=$_db_top/$_db_rw
    { [ -d "$_db_fr" ] && [ ! -L "$_db_fr" ] && _db_nolink "$_db_rw"; } || return 0
    _db_sw=${_db_err#dockerboot: }
    _db_quiet=1
    _db_ours "$_db_fr" || { _db_quiet=0; return 0; }
    _db_quiet=0
    # One line each: the reason lands in a key=value file.
    while :; do
        case $_db_sw in *"$_db_nl"*) _db_sw="${_db_sw%%"$_db_nl"*} ${_db_sw#*"$_db_nl"}" ;; *) break ;; esac
    done
    _db_sw=${_db_sw:-see the dockerboot: line of the boot}
    _db_sdir etc/dockerboot && _db_sput "$_db_fr/$_db_T" boot "stale=$_db_sw$_db_nl" || return 0
    _db_q "dockerboot: this boot is the root of the boot before, unchanged: the hook failed: $_db_sw"
    _db_sdir etc/profile.d && _db_sput "$_db_fr/$_db_T" dockerboot-fallback.sh \
        "# Written by the dockerboot hook at boot: the hook failed, this is the root of the boot before.${_db_nl}printf '%s\\n' $_db_v >&2$_db_nl"
    return 0
}
