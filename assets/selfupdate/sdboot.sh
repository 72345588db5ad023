# shellcheck shell=sh disable=SC2154,SC2034 # the settings, e_*, esp and run are dockerboot-update's
# shellcheck disable=SC2015 # "a && b || die": die is meant when either fails
# dockerboot-update, move 2 for systemd-boot: the entries and kernel copies on
# the ESP, byte for byte what dockerboot-wizard writes (wizard/loaders/
# systemd_boot.py plan_entries + plan_loader_conf, written as esp_plan.write_chain
# writes them); tests/integration/test_selfupdate_sdboot.py compares the two.
# Sourced by dockerboot-update (POSIX sh), after esp.sh.
#
# What is the wizard's here: a copy under EFI/dockerboot/<label>/<n>/ while
# owned records its bytes; an entry loader/entries/dockerboot-<label>-<n>[+L[-D]].conf
# by its name (systemd-boot renames it at every counted try, so no digest).
# Temp files: $run/sd.entry1 $run/sd.entry2 $run/sd.conf $run/sd.owned.

SD_TRIES=3
SD_OURS='# dockerboot-wizard: its entries are the default'
SD_REPLACED='#dockerboot-wizard replaced: '
TAB=$(printf '\t')

# sd_installed DIR: systemd-boot is installed on DIR (systemd_boot.find).
sd_installed() {
    for sd_f in "$1/EFI/systemd/systemd-bootx64.efi" "$1/loader/loader.conf"; do
        { [ -e "$sd_f" ] || [ -L "$sd_f" ]; } && [ -d "$1/loader" ] && return 0
    done
    return 1
}

# sd_holds DIR: ... and it holds an entry of this label's already (with two
# ESPs, the one the wizard wrote to wins).
sd_holds() { sd_installed "$1" && esp=$1 && sd_scan && [ -n "$sd_now" ]; }

# sdboot_find [ro]: esp = the ESP systemd-boot boots from; non-zero with one line.
sdboot_find() {
    find_esp sd_holds "${1:-}" || find_esp sd_installed "${1:-}" && return 0
    printf 'dockerboot-update: error: %s\n' "no systemd-boot on any FAT filesystem (no EFI/systemd/systemd-bootx64.efi, no loader/loader.conf) - mount the ESP (e.g. at /boot/efi), or install it (bootctl install)" >&2
    return 1
}

# sd_scan: sd_now = "<n> <file name>" a line, the wizard's entries of this
# label now (systemd_boot.ours: the name without its counter +L or +L-D and
# .conf is dockerboot-<label>-<digits>; a plain file, never a symlink).
sd_scan() {
    sd_now=''
    for sd_f in "$esp/loader/entries/dockerboot-$label-"*; do
        [ -f "$sd_f" ] && [ ! -L "$sd_f" ] || continue
        sd_b=${sd_f##*/} sd_id=${sd_f##*/}
        case $sd_b in
            *.conf)
                sd_id=${sd_b%.conf}
                case ${sd_id##*+} in
                    "$sd_id") ;;
                    *[!0-9-]*|-*|*-|*-*-*|'') ;;
                    *) sd_id=${sd_id%+*} ;;
                esac ;;
        esac
        sd_d=${sd_id#"dockerboot-$label-"}
        case $sd_d in ''|*[!0-9]*) continue ;; esac
        while :; do case $sd_d in 0?*) sd_d=${sd_d#0} ;; *) break ;; esac; done   # int("007")
        sd_now="$sd_now$sd_d $sd_b$NL"
    done
}

# sd_esc: the label as a sed pattern (its dots literal).
sd_esc() { printf '%s' "$label" | sed 's/\./\\./g'; }

# sd_name N: the file name of generation N's entry now (empty: none).
sd_name() { printf '%s' "$sd_now" | sed -n "s/^$1 //p" | head -n 1; }

# sd_entry I: sd_* = entry I's values (1 the default, 2 the previous), its
# entry rendered into $run/sd.entryI (systemd_boot.render_entry).
sd_entry() {
    eval "sd_n=\$e_num$1 sd_title=\$e_title$1 sd_k=\$e_loader$1 sd_i=\$e_initrd$1 sd_o=\$e_opts$1"
    sd_dir=EFI/dockerboot/$label/$sd_n
    sd_kc=$sd_dir/${sd_k##*/} sd_ic=$sd_dir/${sd_i##*/}
    # An entry there keeps its name (and so its count); a new default with a
    # previous one to fall back to is counted when the image marks its boots good.
    sd_file=$(sd_name "$sd_n")
    if [ -z "$sd_file" ]; then
        sd_file=dockerboot-$label-$sd_n.conf
        [ "$1" = 1 ] && [ "${counting:-0}" = 1 ] && [ -n "$e_num2" ] && sd_file=dockerboot-$label-$sd_n+$SD_TRIES.conf
    fi
    printf '# Written by dockerboot-wizard; replaced on every apply, removed with generation %s\ntitle %s\nversion %s\nsort-key dockerboot\nlinux /%s\ninitrd /%s\noptions %s\n' \
        "$sd_n" "$sd_title" "$sd_n" "$sd_kc" "$sd_ic" "$sd_o" >"$run/sd.entry$1"
}

# sd_count: the entries to write: 1, and 2 when there is a previous one.
sd_count() { if [ -n "$e_num2" ]; then echo 1 2; else echo 1; fi; }

# sdboot_check: refuse (one line, nothing written) what the wizard refuses:
# a copy's place holding a file that is not the wizard's, an entry's place or
# loader.conf that is no plain file, a directory on the way that is a symlink.
# Needs e_* only (not the copies' sources): it can run before a build.
sdboot_check() {
    sd_scan
    for sd_e in $(sd_count); do
        sd_entry "$sd_e"
        for sd_c in "$sd_kc" "$sd_ic"; do
            owned_ok "$sd_c" || die "$esp/$sd_c was not written by dockerboot-wizard (or was changed since)" \
                "move it out of $esp/EFI/dockerboot, then run again"
        done
        sd_plain "loader/entries/$sd_file" ": the wizard never writes through a link" "move it away"
    done
    sd_plain loader/loader.conf '' "make it one"
    no_link EFI/dockerboot/owned
}

# sd_plain REL WHY FIX: refuse REL on the ESP when it is there and no plain file.
sd_plain() {
    no_link "$1"
    { [ -L "$esp/$1" ] || { [ -e "$esp/$1" ] && [ ! -f "$esp/$1" ]; }; } \
        && die "$esp/$1 is not a plain file$2" "$3, then run again"
    return 0
}

# sd_changed TARGET SRC: writing SRC to TARGET changes a byte (plan.changed).
sd_changed() { ! { [ -f "$1" ] && cmp -s "$1" "$2"; }; }

# sd_conf: $run/sd.conf = loader.conf as plan_loader_conf makes it for
# $default_entry: the wizard's lines dropped, then with yes the user's
# "default" lines commented out with SD_REPLACED and the wizard's two lines
# appended; else (no, or never answered) the user's lines put back.  Every
# other byte kept (sed with LC_ALL=C: bytes, a last line without its newline stays).
sd_conf() {
    sd_p=$esp/loader/loader.conf sd_mine="default dockerboot-$label-*"
    sd_re="^default dockerboot-$(sd_esc)-\\*\$"
    if [ -f "$sd_p" ]; then cp "$sd_p" "$run/sd.conf"; else : >"$run/sd.conf"; fi
    if [ "$default_entry" = yes ]; then
        # A bare "default" is a default line only with its newline after it (\s).
        sd_last='$!'
        [ -z "$(tail -c 1 "$run/sd.conf")" ] && sd_last=''
        LC_ALL=C sed -e "/^$SD_OURS/d" -e "\\|$sd_re|d" \
            -e "/^[[:space:]]*default[[:space:]]/s/^/$SD_REPLACED/" \
            -e "${sd_last}s/^\\([[:space:]]*default\\)\$/$SD_REPLACED\\1/" "$sd_p" >"$run/sd.conf" 2>/dev/null
        [ -s "$run/sd.conf" ] && [ -n "$(tail -c 1 "$run/sd.conf")" ] && echo >>"$run/sd.conf"
        printf '%s\n%s\n' "$SD_OURS" "$sd_mine" >>"$run/sd.conf"
    elif [ -f "$sd_p" ]; then
        LC_ALL=C sed -e "/^$SD_OURS/d" -e "\\|$sd_re|d" -e "s/^$SD_REPLACED//" "$sd_p" >"$run/sd.conf"
    fi
}

# sd_owned_text MODE: $run/sd.owned = owned as esp_plan writes it
# (esp_files.owned_bytes: sorted by path, then digest): the lines there but
# those of the paths in $sd_drop, and for each copy written its new digest
# (MODE new), also the old one (MODE old: a kill in between leaves files the
# next run still takes for the wizard's), or nothing more (MODE none).
sd_owned_text() {
    sd_set=''
    if [ "$1" != none ]; then
        for sd_e in $(sd_count); do
            sd_entry "$sd_e"
            for sd_c in "$sd_kc:$sd_k" "$sd_ic:$sd_i"; do
                sd_r=${sd_c%%:*}
                sd_drop="$sd_drop$sd_r$NL"
                sd_set="$sd_set$sd_r$TAB$(sha "$top/${sd_c#*:}")$NL"
                [ "$1" = old ] && sd_old=$(owned_old "$sd_r") && [ -n "$sd_old" ] \
                    && sd_set="$sd_set$sd_r$TAB$sd_old$NL"
            done
        done
    fi
    {
        # read_owned: "<digest> <path>", the path after the first blank, never empty.
        [ -f "$esp/EFI/dockerboot/owned" ] && [ ! -L "$esp/EFI/dockerboot/owned" ] \
            && LC_ALL=C sed -n "s/$CR\$//; s/^\\([^ ]*\\) \\(..*\\)\$/\\2$TAB\\1/p" "$esp/EFI/dockerboot/owned" \
            | while IFS= read -r sd_l || [ -n "$sd_l" ]; do
                case $NL$sd_drop in *"$NL${sd_l%"$TAB"*}$NL"*) continue ;; esac
                printf '%s\n' "$sd_l"
            done
        printf '%s' "$sd_set"
    } | LC_ALL=C sort -u -t "$TAB" -k1,1 -k2,2 | LC_ALL=C sed "s/^\\(.*\\)$TAB\\([^$TAB]*\\)\$/\\2 \\1/" >"$run/sd.owned"
}

# sd_owned MODE: owned written as sd_owned_text makes it, unless it is so already.
sd_owned() {
    sd_owned_text "$1"
    [ -f "$esp/EFI/dockerboot/owned" ] && cmp -s "$esp/EFI/dockerboot/owned" "$run/sd.owned" && return 0
    owned_write "$run/sd.owned"
}

# sd_removes: "<path>" a line, what systemd_boot.plan_entries removes: the
# entries of generations not named any more, then the copies owned records
# under EFI/dockerboot/<label>/<n>/ of those generations, sorted.  Only that
# exact shape (no "..", no deeper path): nothing else on the ESP is ever touched.
sd_removes() {
    printf '%s' "$sd_now" | sort -n | while read -r sd_d sd_b; do
        [ "$sd_d" = "$e_num1" ] || [ "$sd_d" = "$e_num2" ] || printf 'loader/entries/%s\n' "$sd_b"
    done
    [ -f "$esp/EFI/dockerboot/owned" ] && [ ! -L "$esp/EFI/dockerboot/owned" ] || return 0
    LC_ALL=C sed -n "s/$CR\$//; s|^[^ ]* \\(EFI/dockerboot/$(sd_esc)/[0-9][0-9]*/[^/]*\\)\$|\\1|p" \
        "$esp/EFI/dockerboot/owned" | LC_ALL=C sort -u | while IFS= read -r sd_r; do
        sd_x=${sd_r##*/} sd_g=${sd_r#EFI/dockerboot/"$label"/} sd_g=${sd_g%%/*}
        case $sd_x in ''|.|..) continue ;; esac
        while :; do case $sd_g in 0?*) sd_g=${sd_g#0} ;; *) break ;; esac; done
        [ "$sd_g" = "$e_num1" ] || [ "$sd_g" = "$e_num2" ] || printf '%s\n' "$sd_r"
    done
}

# sdboot_names: 0 when nothing is to be written (update._repair: no write
# changes a byte and nothing is to be removed), else 1.
sdboot_names() {
    sd_scan
    [ -z "$(sd_removes)" ] || return 1
    for sd_e in $(sd_count); do
        sd_entry "$sd_e"
        ! sd_changed "$esp/loader/entries/$sd_file" "$run/sd.entry$sd_e" \
            && ! sd_changed "$esp/$sd_kc" "$top/$sd_k" && ! sd_changed "$esp/$sd_ic" "$top/$sd_i" || return 1
    done
}

# sdboot_write: the entries e_* name written as write_chain writes them: the
# free space first, owned with the old and new digests, the copies, the
# entries (copies before the entries that name them: a kill leaves entries
# naming complete files), owned with the new digests only, loader.conf, then
# the old generations' files.  One line per file.
sdboot_write() {
    sdboot_check
    sd_need=262144
    for sd_e in $(sd_count); do
        sd_entry "$sd_e"
        for sd_c in "$sd_kc:$sd_k" "$sd_ic:$sd_i" "loader/entries/$sd_file:$run/sd.entry$sd_e"; do
            sd_t=$esp/${sd_c%%:*} sd_s=${sd_c#*:}
            case $sd_s in /*) ;; *) sd_s=$top/$sd_s ;; esac
            [ -f "$sd_s" ] || die "$sd_s is missing" "run dockerboot-update again"
            sd_changed "$sd_t" "$sd_s" || continue
            sd_need=$((sd_need + $(wc -c <"$sd_s")))
            [ -f "$sd_t" ] && sd_need=$((sd_need + $(wc -c <"$sd_t")))
        done
    done
    esp_space "$sd_need"
    sd_drop=''
    sd_owned old
    # The copies (a backup beside one replaced, as write_atomic keeps it), then the entries (none).
    for sd_pass in copies entries; do
        for sd_e in $(sd_count); do
            sd_entry "$sd_e"
            if [ "$sd_pass" = copies ]; then set -- "$sd_kc:$top/$sd_k:1" "$sd_ic:$top/$sd_i:1"
            else set -- "loader/entries/$sd_file:$run/sd.entry$sd_e:0"; fi
            for sd_c; do
                sd_r=${sd_c%%:*} sd_s=${sd_c#*:} sd_s=${sd_s%:*}
                sd_changed "$esp/$sd_r" "$sd_s" || continue
                put_file "$esp/$sd_r" "$sd_s" "${sd_c##*:}"
                say "wrote $esp/$sd_r${bak:+ (backup: ${bak##*/})}"
            done
        done
    done
    sd_drop=''
    sd_owned new
    sd_conf
    if ! { [ -f "$esp/loader/loader.conf" ] && cmp -s "$esp/loader/loader.conf" "$run/sd.conf"; } \
        && ! { [ ! -e "$esp/loader/loader.conf" ] && [ ! -s "$run/sd.conf" ]; }; then
        put_file "$esp/loader/loader.conf" "$run/sd.conf" 1
        say "wrote $esp/loader/loader.conf${bak:+ (backup: ${bak##*/})}"
    fi
    sd_remove
}

# sd_remove: esp_plan._remove: an entry by its name, a copy only while owned
# records its bytes (then its generation's directory, when empty); anything
# else is kept and said.  owned loses the paths gone.
sd_remove() {
    sd_rm=$(sd_removes)
    [ -n "$sd_rm" ] || return 0
    sd_drop=''
    while IFS= read -r sd_r; do
        sd_p=$esp/$sd_r
        # Never through a symlinked directory (esp_files.target refuses those).
        sd_ok=1
        case $sd_r in
            loader/*) set -- loader loader/entries ;;
            *) set -- EFI EFI/dockerboot "EFI/dockerboot/$label" "${sd_r%/*}" ;;
        esac
        for sd_u; do [ -L "$esp/$sd_u" ] && sd_ok=''; done
        if [ -n "$sd_ok" ] && [ ! -e "$sd_p" ] && [ ! -L "$sd_p" ]; then
            sd_drop="$sd_drop$sd_r$NL"
        elif [ -z "$sd_ok" ] || [ -L "$sd_p" ] || [ ! -f "$sd_p" ] \
            || { case $sd_r in loader/*) false ;; esac && ! owned_ok "$sd_r"; }; then
            say "kept $sd_p: not as dockerboot-wizard wrote it"
        else
            rm -f -- "$sd_p" || die "cannot remove $sd_p" "mount the ESP read-write and run again"
            sd_drop="$sd_drop$sd_r$NL"
            say "removed $sd_p"
            case $sd_r in loader/*) ;; *) rmdir "${sd_p%/*}" 2>/dev/null ;; esac
        fi
    done <<EOF
$sd_rm
EOF
    sd_owned none
}

# sdboot_entries: for status, e_default and e_previous = the two newest of the
# wizard's entries on the ESP (sdboot.status); e_known=1 once the ESP was
# found (mounted read-only when it is not mounted yet).
sdboot_entries() {
    sdboot_find ro 2>/dev/null || { problem "systemd-boot's entries on the ESP not read: no systemd-boot on any FAT filesystem"; return 0; }
    sd_scan
    e_known=1
    # shellcheck disable=SC2046 # the generation numbers, newest first
    set -- $(printf '%s' "$sd_now" | sort -rn | cut -d ' ' -f 1)
    e_default=${1:-} e_previous=${2:-}
    [ -n "$sd_now" ] || problem "no entry of the wizard's in $esp/loader/entries"
}

# sdboot_assessment_json: the "assessment" of a machine systemd-boot counts:
# per entry its tries left and done from its name (systemd_boot.counter;
# null: not counted, or marked good), newest first, sdboot.status's words.
sdboot_assessment_json() {
    [ -n "$e_known" ] || { printf '{"bootloader_counts": false, "why": %s}' "$(js "$ASSESS_WHY")"; return 0; }
    printf '{"bootloader_counts": true, "why": %s, "systemd_boot": {"esp": %s, "entries": {' \
        "$(js "systemd-boot counts the boots of a new generation in its entry's name (+$SD_TRIES): without the booted system's good mark it tries the previous generation first (also when the kernel panics before the hook)")" \
        "$(js "$esp")"
    printf '%s' "$sd_now" | sort -rn | {
        sep=''
        while read -r n f; do
            c=${f%.conf} left=null done=null
            case $c in *+*)
                x=${c##*+} l=${x%%-*} d=0
                case $x in *-*) d=${x#*-} ;; esac
                case $l:$d in *[!0-9:]*|:*|*:) ;; *)
                    while :; do case $l in 0?*) l=${l#0} ;; *) break ;; esac; done   # int("007")
                    while :; do case $d in 0?*) d=${d#0} ;; *) break ;; esac; done
                    left=$l done=$d ;;
                esac ;;
            esac
            printf '%s"%s": {"file": %s, "tries_left": %s, "tries_done": %s}' "$sep" "$n" "$(js "$f")" "$left" "$done"
            sep=', '
        done
    }
    printf '}}}'
}
