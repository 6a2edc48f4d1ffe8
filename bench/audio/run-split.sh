#!/usr/bin/env bash
# Throughput of splitting a 2-hour recording (issue 5, benchmark b): seconds of audio
# processed per second of CPU, for silence detection and for writing the chunks (packet
# remux), on an MP3 and a WAV made here with espeak-ng + sox + ffmpeg.
#
#   bench/audio/run-split.sh [BUILD_DIR]      (default build/)
#   env: HOURS=2, KEEP=dir to keep (and reuse) the generated recordings
set -euo pipefail
build=${1:-build}
bench=$(cd "$build" && pwd)/bench/audio/split_bench
[[ -x "$bench" ]] || { echo "run-split.sh: build split_bench first (cmake --build $build --target split_bench)" >&2; exit 2; }
HOURS=${HOURS:-2}
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
[[ -n "${KEEP:-}" ]] || trap 'rm -rf "$work"' EXIT

if [[ ! -s "$work/long.mp3" ]]; then
  # ~20 s of speech with pauses between sentences, repeated to HOURS hours.
  i=0
  parts=()
  for s in "The meeting started with a review of last quarter's numbers." \
           "Revenue grew in every region except the north, where two stores closed." \
           "Next we discussed the hiring plan for the spring." \
           "Questions from the audience followed, and the session ended on time."; do
    espeak-ng -s 160 -w "$work/s$i.wav" "$s"
    sox "$work/s$i.wav" "$work/p$i.wav" pad 0 1.2
    parts+=("$work/p$i.wav")
    i=$((i + 1))
  done
  sox "${parts[@]}" "$work/unit.wav"
  unit=$(soxi -D "$work/unit.wav")
  repeats=$(awk -v u="$unit" -v h="$HOURS" 'BEGIN { printf "%d", h * 3600 / u }')
  sox "$work/unit.wav" "$work/long-clean.wav" repeat "$repeats"
  len=$(soxi -D "$work/long-clean.wav")
  sox -n -r 22050 -c 1 -b 16 "$work/noise.wav" synth "$len" whitenoise vol 0.001
  sox -m "$work/long-clean.wav" "$work/noise.wav" "$work/long.wav"
  rm -f "$work/long-clean.wav" "$work/noise.wav"
  ffmpeg -hide_banner -loglevel error -nostdin -y -i "$work/long.wav" -c:a libmp3lame -b:a 64k "$work/long.mp3"
fi
echo "recordings: $(soxi -d "$work/long.mp3") of speech; $(du -h "$work/long.mp3" | cut -f1) MP3, $(du -h "$work/long.wav" | cut -f1) WAV; cores=$(nproc)"
for f in long.mp3 long.wav; do
  "$bench" "$work/$f" --repetitions "${REPS:-3}"
done
