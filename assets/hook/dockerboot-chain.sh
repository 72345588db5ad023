# dockerboot-chain.sh — ChainIDs: computed, or found by walking docker's layerdb.
# A part of dockerboot-core.sh (DESIGN §3), sourced by it from its own
# directory; defines functions only.  POSIX sh, busybox ash compatible,
# `set -u` clean; every name starts with _db like the core's.
# shellcheck shell=sh disable=SC2154,SC2015 # the core and its other parts set the _db_
# variables; "A && B || C" is meant so: C runs when A or B fails

# chain_id DIFFID…: print the image-spec ChainID of the layers given bottom first.
chain_id() { _db_chain_id "$@" && printf '%s\n' "$_db_c"; }

# _db_chain_id DIFFID…: _db_c = the ChainID, computed: one sha256sum process
# per layer above the base (~30 ms each under QEMU TCG), plus an rm; none for
# a single layer, whose ChainID is its DiffID.  _db_top_chain avoids the
# per-layer processes for tall images.
_db_chain_id() {
    [ "$#" -gt 1 ] || { _db_c=${1-}; return 0; }
    _db_tool sha256sum
    _db_c='' _db_sha=$_db_tp
    _db_tmp=${DOCKERBOOT_RUNDIR:-/run/dockerboot}/.chain-input
    # The run directory exists in dockerboot_main (the root is mounted under it): no mkdir process.
    [ -d "${_db_tmp%/*}" ] || mkdir -p "${_db_tmp%/*}"
    for _db_d; do
        if [ -z "$_db_c" ]; then
            _db_c=$_db_d
        else
            printf '%s %s' "$_db_c" "$_db_d" >"$_db_tmp"
            _db_h=$("$_db_sha" "$_db_tmp")
            _db_c=sha256:${_db_h%% *}
        fi
    done
    rm -f "$_db_tmp"
}

# _db_top_chain DATA_ROOT DIFFID…: _db_c = the ChainID of the image's top
# layer, exactly what _db_chain_id computes, with a number of processes that
# does not grow with the layer count.  Up to 3 layers the computation costs
# at most as many processes as the layerdb walk (_db_lwalk: grep, one
# sha256sum, rm) and reads nothing else; from 4 layers on the walk is
# cheaper; when it finds no single verified chain (a damaged or hostile
# layerdb) the computation decides.
_db_top_chain() {
    _db_lwd=$1/image/btrfs/layerdb/sha256
    shift
    [ "$#" -ge 4 ] && _db_lwalk "$@" && return 0
    _db_chain_id "$@"
}

# _db_lwalk DIFFID… (4 or more, each sha256:<64 hex> as _db_diff_ids checked;
# the layerdb in _db_lwd): _db_c = the top layer's ChainID, found by walking
# docker's own layerdb instead of hashing layer by layer.  Each
# layerdb/sha256/<chain>/ holds "diff" (the layer's DiffID) and "parent" (the
# ChainID below; none for a base layer).  Docker's names and files are only
# hints here:
# - one grep process reads every entry's "diff" (-x -F: whole content,
#   literally) and prints those holding one of the image's DiffIDs, so the
#   shell parses and reads further only the image's own entries however
#   many other images share the store (a glob hands grep the files: no
#   per-entry list building in the shell, which is quadratic in ash);
# - first, in grep's subshell, every "diff" must be a regular file, neither
#   it nor its entry a symlink: else nothing is read (non-zero), so nothing
#   outside the data-root is read and no FIFO or device blocks or floods the
#   hook (a store docker wrote has none of them: the computation takes over);
# - the walk starts from the base layer's ChainID (= its DiffID) and takes,
#   for each next DiffID, the entry with that diff, or of several (the same
#   layer on other parents) the one whose "parent" is the chain so far;
#   none, or two on the same parent (a missing or lying file): non-zero;
# - then one sha256sum process hashes every link "<chain below> <DiffID>" at
#   once (all inputs are known once the names are) and each must give the
#   next entry's name: a lying diff or parent can never choose the result,
#   which is always the ChainID the computation would give.
# Non-zero (nothing decided, the computation decides) whenever any step is
# unsure.
_db_lwalk() {
    _db_lwb=$1 _db_lwds=''
    for _db_lwe do
        # Checked again: the table's variable names below are made of them.
        case $_db_lwe in sha256:*[!0-9a-f]*) return 1 ;; sha256:*) ;; *) return 1 ;; esac
        [ "${#_db_lwe}" = 71 ] || return 1
        _db_lwds="$_db_lwds $_db_lwe"
    done
    # Relative, the layerdb would be looked up in CDPATH.
    case $_db_lwd in /*) ;; *) _db_lwd=./$_db_lwd ;; esac
    # Exit 1 (no match) or 2 (an unreadable file): what was printed still
    # counts; 3: an entry the walk does not read.  grep is exec'd: one process.
    _db_o=$(
        cd "$_db_lwd" 2>/dev/null || exit 3
        set +f
        for _db_lwf in ./*/diff; do
            { [ -f "$_db_lwf" ] && [ ! -L "$_db_lwf" ] && [ ! -L "${_db_lwf%/diff}" ]; } || exit 3
        done
        set -f; IFS=' '
        # shellcheck disable=SC2086 # the patterns, checked hex, split on spaces
        set -- $_db_lwds
        for _db_lwe do set -- "$@" -e "$_db_lwe"; shift; done
        set +f
        exec grep -H -x -F -s "$@" ./*/diff </dev/null 2>/dev/null
    ) || [ "$?" -lt 3 ] || return 1
    # The table: _db_lw_<diff hex> = " <name>…", the entries holding that
    # diff; one variable per DiffID, made of checked hex only.  (Not one
    # string searched with "${table#*key}": ash and dash take time quadratic
    # in its length for that, ~20 ms a lookup at 30 layers on a fast host.)
    _db_lwv='' _db_ifs=$IFS
    case $- in *f*) _db_noglob=1 ;; *) _db_noglob=0; set -f ;; esac
    IFS=$_db_nl
    for _db_lwl in $_db_o; do
        case $_db_lwl in ./*/diff:sha256:*) ;; *) continue ;; esac
        _db_lwe=${_db_lwl#./} && _db_lwe=${_db_lwe%%/*}
        _db_lwl=${_db_lwl#"./$_db_lwe/diff:sha256:"}
        case $_db_lwl$_db_lwe in *[!0-9a-f]*) continue ;; esac
        [ "${#_db_lwl}" = 64 ] && [ "${#_db_lwe}" = 64 ] || continue
        # _db_lwv: the variables this call set (a same-named one from elsewhere is not read).
        case $_db_lwv in
            *" _db_lw_$_db_lwl"*) eval "_db_lwx=\$_db_lw_$_db_lwl" ;;
            *) _db_lwx='' _db_lwv="$_db_lwv _db_lw_$_db_lwl" ;;
        esac
        eval "_db_lw_$_db_lwl=\"\$_db_lwx \$_db_lwe\""
    done
    # The walk, writing each link's hash input as it goes.  One entry with
    # the next diff is taken as it is (the hashes check it); of several (the
    # same layer on other parents), the one whose "parent" is the chain so
    # far: read with the shell's read (no process), a regular file and no
    # symlink, and only then.
    _db_tool sha256sum
    _db_tmp=${DOCKERBOOT_RUNDIR:-/run/dockerboot}/.chain-input
    [ -d "${_db_tmp%/*}" ] || mkdir -p "${_db_tmp%/*}"
    _db_c=$_db_lwb _db_lwh='' _db_lwi=0 _db_sha=$_db_tp
    IFS=' '
    # shellcheck disable=SC2086 # one diff ID per word
    set -- $_db_lwds
    shift
    for _db_lwe do
        _db_lwx=''
        case $_db_lwv in *" _db_lw_${_db_lwe#sha256:}"*) eval "_db_lwx=\$_db_lw_${_db_lwe#sha256:}" ;; esac
        case $_db_lwx in
            ' '*' '*)
                _db_lwy=''
                for _db_lwl in $_db_lwx; do
                    _db_lwf=$_db_lwd/$_db_lwl/parent _db_lwp=''
                    { [ -f "$_db_lwf" ] && [ ! -L "$_db_lwf" ]; } || continue
                    { read -r _db_lwp <"$_db_lwf"; } 2>/dev/null || [ -n "$_db_lwp" ]   # no final newline
                    [ "$_db_lwp" = "$_db_c" ] || continue
                    [ -z "$_db_lwy" ] || { _db_lwy=''; break; }     # two on the same parent
                    _db_lwy=$_db_lwl
                done ;;
            *) _db_lwy=${_db_lwx# } ;;
        esac
        [ -n "$_db_lwy" ] || { _db_lwi=-$_db_lwi; break; }
        _db_lwi=$((_db_lwi + 1))
        { printf '%s %s' "$_db_c" "$_db_lwe" >"$_db_tmp.$_db_lwi"; } 2>/dev/null \
            || { _db_lwi=-$_db_lwi; break; }
        _db_lwh="$_db_lwh $_db_lwy" _db_c=sha256:$_db_lwy
    done
    # shellcheck disable=SC2086 # variable names, one per word
    [ -z "$_db_lwv" ] || unset $_db_lwv
    IFS=$_db_ifs
    # The links' files, then one sha256sum over all of them.
    set --
    _db_lwn=${_db_lwi#-}
    while [ "$_db_lwn" -gt 0 ]; do set -- "$_db_tmp.$_db_lwn" "$@"; _db_lwn=$((_db_lwn - 1)); done
    case $_db_lwi in -*) [ "$#" = 0 ] || rm -f "$@"; [ "$_db_noglob" = 1 ] || set +f; return 1 ;; esac
    _db_o=$("$_db_sha" "$@" </dev/null 2>/dev/null) || _db_o=''
    rm -f "$@"
    # Each output line: "<64 hex>  <file>" (a "\" first when the name needs escapes).
    _db_lwg=''
    IFS=$_db_nl
    for _db_lwl in $_db_o; do
        _db_lwl=${_db_lwl#\\}
        _db_lwg="$_db_lwg ${_db_lwl%% *}"
    done
    IFS=$_db_ifs
    [ "$_db_noglob" = 1 ] || set +f
    [ -n "$_db_lwh" ] && [ "$_db_lwg" = "$_db_lwh" ]
}
