# dockerboot-accounts.sh — the image's users and groups merged back into the new
# root's etc/passwd, group, shadow and gshadow.
# A part of dockerboot-core.sh (DESIGN §3), sourced by it from its own
# directory; defines functions only.  POSIX sh, busybox ash compatible,
# `set -u` clean; every name starts with _db like the core's.
# shellcheck shell=sh disable=SC2154,SC2015 # the core and its other parts set the _db_
# variables; "A && B || C" is meant so: C runs when A or B fails

# _db_merge_accounts TOPLAYER IMAGE NEW: give the image's users and groups back.
# Once the wizard made a user, the top layer holds full copies of these files;
# copied over a newer image they would hide the system users its packages
# added.  For each file in both TOPLAYER and IMAGE, NEW's copy becomes the top
# layer's lines in order, then the image's non-empty lines whose name (all
# before the first ':') the top layer lacks.  One grep process reads every
# file ("path:line" per line, also a last line without a newline): a shell
# `read` costs two system calls per byte, slow under emulation.  Written in
# place (only when something is added), so mode, owner and xattrs stay the
# top layer's.  On failure _db_f names the file(s) and NEW must be discarded
# (it may hold a partly written file).
_db_merge_accounts() {
    _db_nl='
'
    [ -L "$3/etc" ] && return 0     # writing there could leave the new root
    _db_mt=$1 _db_mi=$2 _db_mn=$3 _db_files='' _db_fl=
    set --
    for _db_f in etc/passwd etc/group etc/shadow etc/gshadow; do
        [ -f "$_db_mt/$_db_f" ] && [ ! -L "$_db_mt/$_db_f" ] && [ -f "$_db_mi/$_db_f" ] \
            && [ ! -L "$_db_mi/$_db_f" ] && [ -f "$_db_mn/$_db_f" ] && [ ! -L "$_db_mn/$_db_f" ] \
            || continue
        _db_files=$_db_files$_db_nl$_db_f _db_fl="$_db_fl $_db_f"   # for the loop, for errors
        set -- "$@" "$_db_mt/$_db_f" "$_db_mi/$_db_f"
    done
    [ -n "$_db_files" ] || return 0
    _db_f=${_db_fl# }
    # grep exits 1 when every file is empty (no line at all), 2 on an error.
    _db_all=$(grep -H '' "$@" 2>/dev/null) || [ $? = 1 ] || return 1
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    _db_ifs=$IFS; IFS=$_db_nl
    # One word per line (each has its "path:" prefix: none is empty).  grep
    # printed the files in the order given, each file's lines together: one
    # pass over all lines, not one per file (ash is slow under emulation).
    # shellcheck disable=SC2086
    set -- $_db_all
    for _db_f in $_db_files; do
        _db_out='' _db_names=$_db_nl _db_add=''
        while [ "$#" -gt 0 ]; do
            case $1 in "$_db_mt/$_db_f:"*) ;; *) break ;; esac
            _db_l=${1#"$_db_mt/$_db_f:"}
            shift
            _db_out=$_db_out$_db_l$_db_nl
            _db_names=$_db_names${_db_l%%:*}$_db_nl
        done
        while [ "$#" -gt 0 ]; do
            case $1 in "$_db_mi/$_db_f:"*) ;; *) break ;; esac
            _db_l=${1#"$_db_mi/$_db_f:"}
            shift
            [ -n "$_db_l" ] || continue
            # A quoted pattern matches literally: whole names between newlines.
            case $_db_names in *"$_db_nl${_db_l%%:*}$_db_nl"*) continue ;; esac
            _db_add=$_db_add$_db_l$_db_nl
        done
        [ -z "$_db_add" ] && continue
        { printf '%s' "$_db_out$_db_add" >"$_db_mn/$_db_f"; } 2>/dev/null \
            || { IFS=$_db_ifs; [ "$_db_noglob" = 1 ] || set +f; return 1; }
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    return 0
}
