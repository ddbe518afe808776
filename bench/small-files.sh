#!/bin/bash
# Quick small-file timing outside the full harness: N seeded files of 1-16 KiB (default
# 20,000) under data/, timing cpv add, status (twice), push and pull (fresh clone, empty
# cache) against a directory remote, git status on the same files, cpv --version and
# node -e 0. Usage: bench/small-files.sh REPO_ROOT LABEL   (N=2000 for a quick run)
# Work files go to /tmp/pf (BENCH_DIR overrides).
set -e
WT=$1; LABEL=$2; N=${N:-20000}
cpv() { node $WT/packages/cli/bin/run.js "$@"; }; CPV=cpv
B=${BENCH_DIR:-/tmp/pf}/run-$LABEL; rm -rf $B; mkdir -p $B
if [ ! -d ${BENCH_DIR:-/tmp/pf}/data-$N ]; then
  node -e '
  const fs=require("fs"),p=require("path");let s=11;const r=()=>{s^=s<<13;s>>>=0;s^=s>>>17;s^=s<<5;s>>>=0;return s};
  const d=process.argv[1];const n=+process.argv[2];
  for(let i=0;i<n;i++){const sub=p.join(d,"d"+(i%100));if(i<100)fs.mkdirSync(sub,{recursive:true});
   const len=1024+(r()%(15*1024));const b=Buffer.alloc(len);for(let j=0;j+4<=len;j+=4)b.writeUInt32LE(r(),j);fs.writeFileSync(p.join(sub,"f"+i+".bin"),b)}' ${BENCH_DIR:-/tmp/pf}/data-$N $N
fi
cd $B && git init -q ws && cd ws && git config user.email a@b && git config user.name a
$CPV init >/dev/null
$CPV remote add -d origin $B/remote >/dev/null
cp -r ${BENCH_DIR:-/tmp/pf}/data-$N data
t() { local s=$(date +%s.%N); "$@" >/dev/null; local e=$(date +%s.%N); printf "%-28s %6.2f s\n" "$LABEL ${*:1:3}" $(echo "$e - $s" | bc); }
t $CPV add data
t $CPV status
t $CPV status
t $CPV push
# git status on the same files
mkdir -p $B/g && cp -r ${BENCH_DIR:-/tmp/pf}/data-$N $B/g/data && cd $B/g && git init -q && git add -A >/dev/null && git -c user.email=a@b -c user.name=a commit -qm x && git status >/dev/null
t git status
cd $B/ws && git add -A >/dev/null && git commit -qm v1
# pull into a fresh clone
git clone -q $B/ws $B/ws2 && cd $B/ws2 && rm -rf .cpv/cache
t $CPV pull
t $CPV --version
s=$(date +%s.%N); node -e 0; e=$(date +%s.%N); printf "%-28s %6.2f s\n" "$LABEL node -e 0" $(echo "$e - $s" | bc)
