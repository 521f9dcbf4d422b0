"""Formant view: F1/F2 per vowel × emotion × corpus, Nearey-normalised, as vowel spaces.

Measurement
    Praat's Burg method through parselmouth (``Sound: To Formant (burg)``: 5
    formants, 25 ms window, 5 ms step, pre-emphasis from 50 Hz, ceiling 5000 Hz
    for male and 5500 Hz for female or unknown speakers, Praat's standard
    settings).  F1 and F2 of a vowel are Praat's ``Get mean`` over the middle
    half of the vowel (from 25 % to 75 % of its duration), which keeps away from
    the transitions into the neighbouring consonants.  Diphthongs are measured
    the same way, so their point is the middle of the glide.

Normalisation
    Nearey's single-parameter log-mean normalisation ("Nearey 2", formant
    extrinsic; Nearey 1978): for each speaker, ``G = mean(ln F1, ln F2)`` over
    all of that speaker's measured tokens (every vowel and emotion), and
    ``Fn_norm = ln Fn - G``.  One shared parameter per speaker removes
    vocal-tract length while keeping the F1/F2 ratio that carries vowel quality.
    Speakers are keyed by corpus and speaker id; tokens without a speaker id
    share one pool per corpus.

Bad input is counted, never dropped silently: unreadable audio (the
:class:`~speechbrain_phonanchor.audio.AudioError` reason), ``vowel_too_short``
(under ``min_duration``), ``vowel_outside_audio`` and ``formant_undefined``
(Praat found no F1 or F2 in the middle part).

Example
-------
>>> import numpy as np
>>> tokens = pd.DataFrame({"corpus": ["pl"] * 2, "spk": ["s1"] * 2, "F1": [300.0, 700.0], "F2": [2300.0, 1200.0]})
>>> normalised = nearey_normalise(tokens)
>>> bool(np.isclose(normalised[["F1_norm", "F2_norm"]].to_numpy().mean(), 0.0))
True
"""

import collections
import itertools

import numpy as np
import pandas as pd
import parselmouth
from matplotlib.figure import Figure
from parselmouth.praat import call
from tqdm import tqdm

from speechbrain_phonanchor.audio import SAMPLE_RATE, AudioError, load_audio
from speechbrain_phonanchor.fileio import atomic_open
from speechbrain_phonanchor.phonetics import KINDS, VOWELS

MIDDLE = (0.25, 0.75)
MIN_DURATION = 0.03
TIME_STEP = 0.005
CEILING = {"M": 5000.0, "F": 5500.0}
DEFAULT_CEILING = 5500.0
TOKEN_COLUMNS = ["corpus", "utt_id", "spk", "gender", "emo", "vowel", "kind", "start", "end", "F1", "F2"]
CORPUS_STYLES = (("tab:blue", "o"), ("tab:red", "s"), ("tab:green", "^"), ("tab:purple", "D"))


def formant_track(samples, sample_rate=SAMPLE_RATE, gender=None):
    """Run Praat's Burg formant analysis on one utterance.

    Arguments
    ---------
    samples : array-like
        Mono samples in [-1, 1].
    sample_rate : float
        Their rate in Hz.
    gender : str, optional
        ``"M"`` selects a 5000 Hz ceiling; anything else 5500 Hz.

    Returns
    -------
    parselmouth.Formant

    Example
    -------
    >>> track = formant_track(np.random.default_rng(0).normal(0, 0.1, 8000), 16000)
    >>> round(track.xmax, 2)
    0.5
    """
    sound = parselmouth.Sound(np.asarray(samples, dtype=np.float64), sampling_frequency=sample_rate)
    return sound.to_formant_burg(
        time_step=TIME_STEP,
        max_number_of_formants=5,
        maximum_formant=CEILING.get(gender, DEFAULT_CEILING),
        window_length=0.025,
        pre_emphasis_from=50.0,
    )


def vowel_formants(track, start, end, middle=MIDDLE, min_duration=MIN_DURATION):
    """Mean F1 and F2 (Hz) over the middle part of one vowel, or a skip reason.

    Arguments
    ---------
    track : parselmouth.Formant
        The utterance's formant track (:func:`formant_track`).
    start, end : float
        The vowel's boundaries in seconds.
    middle : (float, float)
        Fractions of the vowel's duration bounding the measured part.
    min_duration : float
        Vowels shorter than this (seconds) are ``vowel_too_short``.

    Returns
    -------
    ((float, float), None) or (None, str)
        ``((F1, F2), None)`` or ``(None, reason)``.

    Example
    -------
    >>> track = formant_track(np.zeros(1600) + 1e-4, 16000)
    >>> vowel_formants(track, 0.05, 0.06)
    (None, 'vowel_too_short')
    """
    if end - start < min_duration:
        return None, "vowel_too_short"
    if start < track.xmin or end > track.xmax + TIME_STEP:
        return None, "vowel_outside_audio"
    t0 = start + middle[0] * (end - start)
    t1 = start + middle[1] * (end - start)
    f1, f2 = (call(track, "Get mean", number, t0, t1, "hertz") for number in (1, 2))
    if not (np.isfinite(f1) and np.isfinite(f2)):
        return None, "formant_undefined"
    return (float(f1), float(f2)), None


def measure_formants(entries, corpus, kinds=("mono", "diph"), progress=False):
    """Measure F1/F2 of every inventory vowel in ``entries`` (one corpus).

    Arguments
    ---------
    entries : dict
        Utterance id → manifest entry (resolved ``wav`` paths).
    corpus : str
        Name written in the ``corpus`` column.
    kinds : sequence of str
        Vowel kinds to measure.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    (pandas.DataFrame, collections.Counter)
        One row per measured vowel token (columns ``TOKEN_COLUMNS``) and the
        skip counts by reason: ``no_vowels`` counts utterances, every other
        reason counts vowels.
    """
    wanted = {vowel for kind in kinds for vowel in KINDS[kind]}
    rows, skipped = [], collections.Counter()
    for utt_id, entry in tqdm(entries.items(), desc=f"formants {corpus}", disable=not progress):
        vowels = [v for v in entry.get("vowels") or [] if v.get("vowel") in wanted]
        if not vowels:
            skipped["no_vowels"] += 1
            continue
        try:
            wav, _ = load_audio(entry["wav"], silence_dbfs=None)
        except AudioError as err:
            skipped[err.reason] += len(vowels)
            continue
        track = formant_track(wav.numpy(), SAMPLE_RATE, entry.get("gender"))
        for vowel in vowels:
            values, reason = vowel_formants(track, vowel["start"], vowel["end"])
            if reason:
                skipped[reason] += 1
                continue
            rows.append(
                {
                    "corpus": corpus,
                    "utt_id": utt_id,
                    "spk": entry.get("spk"),
                    "gender": entry.get("gender"),
                    "emo": entry["emo"],
                    "vowel": vowel["vowel"],
                    "kind": vowel["kind"],
                    "start": vowel["start"],
                    "end": vowel["end"],
                    "F1": values[0],
                    "F2": values[1],
                }
            )
    return pd.DataFrame(rows, columns=TOKEN_COLUMNS), skipped


def nearey_normalise(tokens):
    """Add ``F1_norm`` and ``F2_norm``: Nearey's single-parameter log-mean per speaker.

    ``G = mean(ln F1, ln F2)`` over all tokens of a speaker (keyed by ``corpus``
    and ``spk``; a missing ``spk`` forms one pool per corpus), then
    ``Fn_norm = ln Fn - G``.

    Example
    -------
    >>> t = pd.DataFrame({"corpus": ["a", "a"], "spk": [None, None], "F1": [500.0, 500.0], "F2": [500.0, 500.0]})
    >>> nearey_normalise(t)["F1_norm"].tolist()
    [0.0, 0.0]
    """
    tokens = tokens.copy()
    speaker = tokens["corpus"].astype(str) + "/" + tokens["spk"].fillna("<unknown>").astype(str)
    logs = np.log(tokens[["F1", "F2"]].to_numpy(dtype=float))
    grand = pd.Series(logs.mean(axis=1)).groupby(speaker.to_numpy()).transform("mean").to_numpy()
    tokens["F1_norm"] = logs[:, 0] - grand
    tokens["F2_norm"] = logs[:, 1] - grand
    return tokens


def formant_means(tokens):
    """Mean raw and normalised F1/F2 per corpus × emotion × kind × vowel, with token counts.

    Example
    -------
    >>> t = pd.DataFrame({"corpus": ["a"] * 2, "emo": ["neu"] * 2, "kind": ["mono"] * 2, "vowel": ["i"] * 2,
    ...                   "F1": [300.0, 320.0], "F2": [2300.0, 2200.0], "F1_norm": [0.0, 0.1], "F2_norm": [1.0, 1.1]})
    >>> formant_means(t)[["n", "F1", "F2"]].values.tolist()
    [[2.0, 310.0, 2250.0]]
    """
    keys = ["corpus", "emo", "kind", "vowel"]
    grouped = tokens.groupby(keys, sort=True)
    means = grouped[["F1", "F2", "F1_norm", "F2_norm"]].mean()
    means.insert(0, "n", grouped.size())
    return means.reset_index()


def sanity_check(tokens):
    """The check every real vowel space passes: F2(i) > F2(a) and F1(a) > F1(i), per corpus.

    Uses raw Hz means over all tokens of the corpus (every emotion).

    Returns
    -------
    dict
        Corpus → ``{"F1_i", "F2_i", "F1_a", "F2_a", "ok"}``; the means are NaN
        and ``ok`` is False when /i/ or /a/ was never measured.

    Example
    -------
    >>> t = pd.DataFrame({"corpus": ["x", "x"], "vowel": ["i", "a"], "F1": [300.0, 750.0], "F2": [2300.0, 1300.0]})
    >>> sanity_check(t)["x"]["ok"]
    True
    """
    result = {}
    for corpus, group in tokens.groupby("corpus", sort=True):
        means = group.groupby("vowel")[["F1", "F2"]].mean()
        values = {
            f"{formant}_{vowel}": float(means.loc[vowel, formant]) if vowel in means.index else float("nan")
            for vowel in ("i", "a")
            for formant in ("F1", "F2")
        }
        values["ok"] = bool(values["F2_i"] > values["F2_a"] and values["F1_a"] > values["F1_i"])
        result[corpus] = values
    return result


def plot_vowel_spaces(means, kind, path, corpora=None, emotions=None):
    """Draw one vowel space per emotion, all corpora in each panel, and save a PNG.

    Axes follow phonetic convention: normalised F2 on x and F1 on y, both
    reversed, so /i/ is top left and /a/ bottom centre.

    Arguments
    ---------
    means : pandas.DataFrame
        Output of :func:`formant_means`.
    kind : str
        ``"mono"`` or ``"diph"``.
    path : str or Path
        The PNG to write (atomically).
    corpora, emotions : list of str, optional
        Order of the legend and the panels; default: sorted values in ``means``.

    Returns
    -------
    int
        Number of points drawn.
    """
    data = means[means["kind"] == kind]
    corpora = corpora or sorted(means["corpus"].unique())
    emotions = emotions or sorted(means["emo"].unique())
    ncols = min(4, max(1, len(emotions)))
    nrows = -(-len(emotions) // ncols) if emotions else 1
    fig = Figure(figsize=(4.2 * ncols, 4.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    drawn = 0
    for ax, emotion in zip(axes.flat, emotions):
        for (color, marker), corpus in zip(itertools.cycle(CORPUS_STYLES), corpora):
            points = data[(data["emo"] == emotion) & (data["corpus"] == corpus)]
            points = points.assign(order=points["vowel"].map(VOWELS.index)).sort_values("order")
            ax.scatter(points["F2_norm"], points["F1_norm"], c=color, marker=marker, label=corpus)
            for row in points.itertuples():
                ax.annotate(row.vowel, (row.F2_norm, row.F1_norm), color=color, fontsize=11,
                            xytext=(4, 3), textcoords="offset points")
            drawn += len(points)
        ax.set_title(emotion)
        ax.set_xlabel("F2 (Nearey log-mean, ln units)")
        ax.set_ylabel("F1 (Nearey log-mean, ln units)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(emotions):]:
        ax.set_visible(False)
    first = axes.flat[0]
    first.invert_xaxis()
    first.invert_yaxis()
    first.legend(loc="lower left", fontsize=9)
    fig.suptitle(f"Vowel spaces per emotion ({'monophthongs' if kind == 'mono' else 'diphthongs'})")
    save_figure(fig, path)
    return drawn


def save_figure(fig, path):
    """Lay out ``fig`` and write it as a PNG to ``path`` atomically."""
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
