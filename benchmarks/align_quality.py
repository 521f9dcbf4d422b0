"""Quality of the built-in aligner.

``synthetic``: espeak-ng synthesises sentences (several rates and voices) and
reports, through its C API, when each phoneme starts (``espeakEVENT_PHONEME``).
The aligner is trained on that speech with ``align_corpus`` and the onset of
every vowel it finds is compared with espeak-ng's onset of the same vowel.
The two vowel sequences are paired in order by a Levenshtein alignment of
their inventory classes; only pairs of the same class are scored, and
``vowels_matched`` / ``vowels_reference`` says how many that is.
Target: median error ≤ 20 ms.

Mandarin needs two things the other languages do not: espeak-ng's ``cmn``
voice writes a final as one phoneme in its own symbols (``iɛ``, ``uo``,
``ai``, ``onɡ``, ``o-``...), most of which ``map_phone`` does not know, so
:data:`ESPEAK_CMN_FINALS` gives each the vowel the pinyin G2P's phones for
that final map to; and those phonemes start at the medial glide, so on both
sides a vowel's onset is that of the glide right before it (``j w ɥ``), i.e.
the onset of the syllable's final.  Without this, 40 % of the reference
vowels were dropped and an exact-label matcher (difflib) paired vowels
hundreds of ms apart (median 22-25 ms, mean 140 ms, p90 410 ms were mostly
such mispairings, not alignment errors).

``corpus``: for TextGrids written by ``phonanchor-align`` on a real corpus
(no hand labels): fraction aligned, utterances with ≥ 3 vowels, vowels per
second, the vowel-duration distribution and the time the run took.

Usage::

    python benchmarks/align_quality.py synthetic --langs en zh ru pl it --out bench/
    python benchmarks/align_quality.py corpus /work/aligned/nemo_pl --data /work/shared/data/nemo_pl

Example
-------
>>> match_onsets([("a", 0.10), ("i", 0.30)], [("a", 0.12), ("u", 0.2), ("i", 0.31)])
[0.02, 0.01]
"""

import argparse
import csv
import json
import pathlib
import sys
import tempfile
import time

import numpy as np
import soundfile
from scipy.signal import resample_poly

from speechbrain_phonanchor.align import align_corpus
from speechbrain_phonanchor.align.trainer import TrainConfig
from speechbrain_phonanchor.phonetics import map_phone
from speechbrain_phonanchor.synth import Prosody, synthesize_many
from speechbrain_phonanchor.textgrids import read_alignment

SENTENCES = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "She sells sea shells by the sea shore every morning.",
        "My father bought a new car for the long trip.",
        "Please call me back when you get home tonight.",
        "The weather was cold and windy all week long.",
        "We walked along the river until the sun went down.",
        "A large crowd gathered outside the old theatre.",
        "He never told anyone about the hidden letter.",
        "Our teacher gave us a difficult test on Monday.",
        "The children played in the garden after lunch.",
        "I would like a cup of hot coffee with milk.",
        "They moved to a small town near the mountains.",
    ],
    "zh": [
        "今天天气很好，我们去公园散步吧。",
        "他每天早上六点起床跑步。",
        "这本书非常有意思，你应该读一读。",
        "我的朋友明天要去北京工作。",
        "妈妈在厨房里做晚饭。",
        "请问火车站怎么走？",
        "我们学校有很多外国学生。",
        "昨天晚上下了一场大雨。",
        "他喜欢听音乐和看电影。",
        "这个城市的冬天很冷。",
        "老师让我们写一篇作文。",
        "周末我想在家里休息。",
    ],
    "ru": [
        "Сегодня хорошая погода, пойдём гулять в парк.",
        "Мой брат работает врачом в большой больнице.",
        "Мы долго ждали автобус на остановке.",
        "Она купила новое платье для праздника.",
        "Дети играют во дворе после школы.",
        "Я люблю читать книги по вечерам.",
        "Зимой в этом городе очень холодно.",
        "Отец приготовил вкусный ужин для всей семьи.",
        "Наш поезд отправляется ровно в восемь часов.",
        "Студенты сдавали трудный экзамен утром.",
        "В саду растут яблоки и груши.",
        "Мама позвонила мне вчера вечером.",
    ],
    "pl": [
        "Ten miesiąc minął bardzo szybko.",
        "Kwiecień to czwarty miesiąc w roku.",
        "Zima to czas jeżdżenia na sankach.",
        "Mój brat pracuje w dużym szpitalu.",
        "Dzieci bawią się na podwórku po szkole.",
        "Lubię czytać książki wieczorem.",
        "Wczoraj wieczorem padał mocny deszcz.",
        "Nasz pociąg odjeżdża o ósmej rano.",
        "Mama ugotowała pyszny obiad dla całej rodziny.",
        "Studenci zdawali trudny egzamin.",
        "W ogrodzie rosną jabłka i gruszki.",
        "Pojedziemy nad morze w wakacje.",
    ],
    "it": [
        "Gli operai si alzano presto.",
        "I vigili sono muniti di pistola.",
        "La cascata fa molto rumore.",
        "Mio fratello lavora in un grande ospedale.",
        "I bambini giocano nel cortile dopo la scuola.",
        "Mi piace leggere libri la sera.",
        "Ieri sera ha piovuto molto forte.",
        "Il nostro treno parte alle otto in punto.",
        "La mamma ha preparato una cena deliziosa.",
        "Gli studenti hanno superato un esame difficile.",
        "Nel giardino crescono mele e pere.",
        "Andremo al mare durante le vacanze.",
    ],
}
ESPEAK_VOICE = {"en": "en-us", "zh": "cmn", "ru": "ru", "pl": "pl", "it": "it"}
RATES = (150, 175, 200)  # words per minute
VARIANTS = ("", "+f3", "+m3")

# espeak-ng's Mandarin voice (``cmn``) writes a syllable's final as one phoneme, in its own symbols;
# map_phone knows only some of them.  Each is given here the inventory vowel that the pinyin G2P's
# phones for the same final map to, and whether it starts with a medial glide (i-, u-, y-).
# Apical vowels (``i.`` after zh/ch/sh/r, ``i̪`` after z/c/s) and ``y`` are no inventory vowel
# on either side (the G2P writes ``ɻ̩``, ``ɹ̩``, ``y``), so they are not counted.
ESPEAK_CMN_FINALS = {
    "ai": ("aɪ", False), "ei": ("eɪ", False), "ɑu": ("aʊ", False), "ou": ("oʊ", False), "o-": ("ə", False),
    "onɡ": ("u", False), "ionɡ": ("u", True),
    "iɛ": ("ɛ", True), "iɑ": ("a", True), "iɑu": ("aʊ", True), "iou": ("oʊ", True),
    "ua": ("a", True), "uo": ("ɔ", True), "uə": ("ə", True), "uai": ("aɪ", True), "uei": ("eɪ", True),
    "yæ": ("ɛ", True), "yɛ": ("ɛ", True), "y": (None, False), "i.": (None, False), "i̪": (None, False),
}  # fmt: skip
GLIDES = {"j", "w", "ɥ"}


def _espeak_vowel(phoneme, lang):
    """``(inventory vowel or None, starts with a medial glide)`` of one espeak-ng phoneme."""
    phoneme = phoneme.strip().lstrip("ˈˌ")
    if lang == "zh" and phoneme in ESPEAK_CMN_FINALS:
        return ESPEAK_CMN_FINALS[phoneme]
    return map_phone(phoneme, "espeak").vowel, False


def vowel_onsets_from_events(events, lang=None):
    """``[(inventory vowel, onset), ...]`` from espeak-ng phoneme events (IPA strings).

    For Mandarin (``lang="zh"``) the onset is that of the syllable's final, medial glide
    included: espeak-ng writes most rising diphthongs as one phoneme (``iɛ``, ``uo``) that starts
    with the glide, and some as glide + vowel (``w o``), so a glide right before the vowel
    gives the onset.  :func:`vowel_onsets_from_textgrid` does the same with the G2P's ``j w ɥ``.

    >>> vowel_onsets_from_events([("th", 0.0), ("ˈiɛ", 0.05), ("n", 0.2), ("w", 0.3), ("ˈo", 0.35)], "zh")
    [('ɛ', 0.05), ('ɔ', 0.3)]
    """
    onsets = []
    for k, (phoneme, onset) in enumerate(events):
        vowel, _ = _espeak_vowel(phoneme, lang)
        if vowel is None:
            continue
        if lang == "zh" and k > 0 and events[k - 1][0].strip() in GLIDES:
            onset = events[k - 1][1]
        onsets.append((vowel, onset))
    return onsets


def vowel_onsets_from_textgrid(path, lang=None):
    """``[(inventory vowel, onset), ...]`` from a TextGrid read with the ``espeak`` phone set.

    For Mandarin the onset of a vowel right after a glide (``j w ɥ``, the medial or the
    zero initial ``y w``) is the glide's onset, as in :func:`vowel_onsets_from_events`.
    """
    alignment = read_alignment(path, "espeak")
    if lang != "zh":
        return [(v["vowel"], v["start"]) for v in alignment.vowels]
    glide_end = {round(end, 4): start for label, start, end in alignment.phones if label in GLIDES}
    return [(v["vowel"], glide_end.get(round(v["start"], 4), v["start"])) for v in alignment.vowels]


def match_vowels(reference, hypothesis):
    """Pair vowels of two sequences in order: a Levenshtein alignment of their labels.

    Returns ``[(i, j), ...]`` index pairs (substitutions included, so a vowel whose class
    differs still pairs with its neighbour in order instead of with a distant same-class
    vowel, which is what an exact-match alignment such as difflib's does).

    >>> match_vowels([("a", 0), ("ə", 1), ("i", 2)], [("a", 0), ("ɛ", 1), ("i", 2)])
    [(0, 0), (1, 1), (2, 2)]
    """
    a, b = [v for v, _ in reference], [v for v, _ in hypothesis]
    cost = np.zeros((len(a) + 1, len(b) + 1))
    cost[:, 0], cost[0, :] = np.arange(len(a) + 1), np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + (a[i - 1] != b[j - 1]), cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs, i, j = [], len(a), len(b)
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (a[i - 1] != b[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def match_onsets(reference, hypothesis):
    """Absolute onset errors (s) of the vowel pairs of :func:`match_vowels` whose classes agree."""
    return [round(abs(reference[i][1] - hypothesis[j][1]), 4) for i, j in match_vowels(reference, hypothesis)
            if reference[i][0] == hypothesis[j][0]]  # fmt: skip


def make_synthetic_corpus(lang, folder, jobs=2):
    """Synthesise every sentence × rate × voice variant into ``folder`` (metadata.csv + wavs).

    Returns ``{utt_id: [(inventory vowel, onset s), ...]}``, espeak-ng's own timings.
    """
    folder = pathlib.Path(folder)
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    utterances = [
        (f"{lang}_{s:02d}_{rate}_{v}", text, ESPEAK_VOICE[lang] + variant, Prosody(rate=rate, pitch=40 + 10 * v))
        for s, text in enumerate(SENTENCES[lang])
        for rate in RATES
        for v, variant in enumerate(VARIANTS)
    ]
    spoken = synthesize_many([(text, voice, prosody) for _, text, voice, prosody in utterances], jobs=jobs)
    references, rows = {}, []
    for (utt_id, text, _, _), synthesis in zip(utterances, spoken):
        wav16 = resample_poly(synthesis.samples, 16000, synthesis.sample_rate).astype(np.float32)
        soundfile.write(folder / "wavs" / f"{utt_id}.flac", wav16, 16000)
        references[utt_id] = vowel_onsets_from_events(synthesis.phonemes, lang)
        rows.append({"utt_id": utt_id, "path": f"wavs/{utt_id}.flac", "text": text, "language": lang,
                     "duration": round(len(wav16) / 16000, 3)})  # fmt: skip
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return references


def synthetic_benchmark(langs, work_dir, jobs=2, num_iters=40):
    """Train + align espeak-ng speech per language; median/mean/p90 vowel-onset error in ms."""
    results = {}
    for lang in langs:
        corpus = pathlib.Path(work_dir) / lang
        references = make_synthetic_corpus(lang, corpus, jobs=jobs)
        start = time.time()
        report = align_corpus(corpus, lang, corpus / "textgrids", corpus / "model", jobs=jobs, retrain=True,
                              config=TrainConfig(num_iters=num_iters, jobs=jobs), show_progress=False)  # fmt: skip
        errors, matched, total = [], 0, 0
        for utt_id, reference in references.items():
            path = corpus / "textgrids" / f"{utt_id}.TextGrid"
            total += len(reference)
            if path.is_file():
                utt_errors = match_onsets(reference, vowel_onsets_from_textgrid(path, lang))
                errors += utt_errors
                matched += len(utt_errors)
        errors_ms = np.array(errors) * 1000
        results[lang] = {
            "utterances": len(references),
            "aligned": report["aligned"],
            "vowels_matched": matched,
            "vowels_reference": total,
            "median_onset_error_ms": round(float(np.median(errors_ms)), 1) if matched else None,
            "mean_onset_error_ms": round(float(np.mean(errors_ms)), 1) if matched else None,
            "p90_onset_error_ms": round(float(np.percentile(errors_ms, 90)), 1) if matched else None,
            "within_20ms": round(float(np.mean(errors_ms <= 20)), 3) if matched else None,
            "seconds": round(time.time() - start, 1),
        }
        print(lang, json.dumps(results[lang]), flush=True)
    return results


def corpus_statistics(textgrid_dir, data_dir):
    """Fraction aligned, vowels/s, vowel durations and ≥3-vowel share for a real corpus's TextGrids."""
    textgrid_dir = pathlib.Path(textgrid_dir)
    with open(pathlib.Path(data_dir) / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    durations, rates, counts, aligned = [], [], [], 0
    for row in rows:
        path = textgrid_dir / f"{row['utt_id']}.TextGrid"
        if not path.is_file():
            continue
        aligned += 1
        vowels = read_alignment(path, "espeak", audio_duration=float(row["duration"])).vowels
        counts.append(len(vowels))
        durations += [v["end"] - v["start"] for v in vowels]
        rates.append(len(vowels) / float(row["duration"]))
    durations_ms = np.array(durations) * 1000
    report_path = textgrid_dir / "align_report.json"
    run = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return {
        "utterances": len(rows),
        "aligned": aligned,
        "fraction_aligned": round(aligned / max(len(rows), 1), 4),
        "fraction_with_3_vowels": round(float(np.mean(np.array(counts) >= 3)) * aligned / max(len(rows), 1), 4),
        "vowels_per_second": round(float(np.mean(rates)), 2),
        "vowel_duration_ms": {q: round(float(np.percentile(durations_ms, p)), 1)
                              for q, p in (("p10", 10), ("p25", 25), ("median", 50), ("p75", 75), ("p90", 90))},
        "vowel_duration_histogram_ms": dict(zip(
            ["30-50", "50-80", "80-120", "120-200", "200+"],
            np.histogram(durations_ms, bins=[30, 50, 80, 120, 200, 1e9])[0].tolist())),
        "run_seconds": run.get("seconds"),
        "failed_by_reason": run.get("failed_by_reason"),
    }  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    syn = sub.add_parser("synthetic", help="espeak-ng speech with known phoneme timings")
    syn.add_argument("--langs", nargs="+", default=list(SENTENCES))
    syn.add_argument("--out", help="working folder (default: a temporary one)")
    syn.add_argument("--jobs", type=int, default=2)
    syn.add_argument("--num-iters", type=int, default=40)
    cor = sub.add_parser("corpus", help="statistics of TextGrids written for a real corpus")
    cor.add_argument("textgrids")
    cor.add_argument("--data", required=True, help="corpus folder with metadata.csv")
    args = parser.parse_args(argv)
    if args.mode == "synthetic":
        work = args.out or tempfile.mkdtemp(prefix="align_quality_")
        result = synthetic_benchmark(args.langs, work, args.jobs, args.num_iters)
    else:
        result = corpus_statistics(args.textgrids, args.data)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
