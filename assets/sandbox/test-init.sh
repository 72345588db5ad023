#!/bin/sh
# Test init baked into the e2e images: prints facts about the booted root to
# the serial console (DBW-FACT key=value), leaves a scratch file in the root
# (which the next boot must not see) and powers off.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
fact() { echo "DBW-FACT $1=$2" > /dev/console; }
fact root_subvol "$(awk '$5 == "/" { print $4 }' /proc/self/mountinfo | tail -n1)"
fact root_fstype "$(awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i+1); exit } }' /proc/self/mountinfo)"
fact root_rw "$(awk '$2 == "/" { print $4 }' /proc/mounts | tail -n1 | cut -d, -f1)"
fact root_mode "$(stat -c %a /)"
fact hostname "$(cat /etc/hostname 2>/dev/null)"
fact user "$(grep '^alice:' /etc/passwd | cut -d: -f1,6)"
fact user_hash "$(grep '^alice:' /etc/shadow | cut -d: -f2 | cut -c1-3)"
fact image_marker "$(cat /etc/dbw-image-marker 2>/dev/null)"
fact previous_boot_file "$( [ -e /dbw-written-at-boot ] && echo present || echo absent)"
fact cmdline "$(cat /proc/cmdline)"
fact kernel "$(uname -r)"
fact modules_dir "$( [ -d "/lib/modules/$(uname -r)" ] && echo present || echo absent)"
# What the booted system's docker needs first (bridge + netfilter): proof the modules load.
fact modprobe "$(modprobe br_netfilter 2>&1 && echo ok)"
echo "written during boot" > /dbw-written-at-boot
sync
fact done yes
echo o > /proc/sysrq-trigger
sleep 30
