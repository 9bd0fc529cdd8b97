"""A constructed set of short product reviews with known aspects: the evaluation set of summary jobs.

Source: constructed here, seeded, deterministic. No public review dataset with aspect labels is packaged
on the registries this project can reach (PyPI, npm, Debian carry review *scrapers*, which need the
network, not data), so the set is generated from hand-written phrasings whose meaning is known, and the
ground truth comes with it: which aspects each review mentions, and whether it praises or criticises them.

* Three products (``PRODUCTS``), each with its aspects (sound, battery life, price ...). Each aspect has
  a frequency (the chance a review mentions it) and a positive share (the chance that a mention praises
  it), so a product has clear pros, clear cons, and rare aspects that no summary needs to mention.
* Every aspect and polarity has several phrasings in English and a few in German, Spanish and French;
  a review is one to three of them (a sentence each, shuffled), sometimes with a sentence that mentions
  no aspect ("Bought this as a gift"). About a quarter of the reviews are not in English (``LANGUAGE_SHARES``),
  so a summary in English has to read other languages.
* Review ``index`` is drawn from a generator seeded with ``f"{seed}:{index}"`` alone: the set of 200 is
  the first 200 reviews of the set of 2,000, and any review can be rebuilt from its id and the seed.
  Products take turns (review ``i`` is about ``PRODUCTS[i % 3]``).

Each review becomes a document whose user metadata (``Review.fields``) names the product, the review id
and the set, so a summary job selects one product with ``{"product": "..."}`` and ``quarry eval
summaries`` finds the ground truth of any document it cites.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from quarry.errors import InvalidInput

__all__ = [
    "DEFAULT_SEED",
    "LANGUAGE_SHARES",
    "PRODUCTS",
    "REVIEW_SET",
    "SMALL_SET",
    "TARGET_SET",
    "Aspect",
    "AspectProfile",
    "Mention",
    "Polarity",
    "Product",
    "Review",
    "aspect_counts",
    "generate_reviews",
    "product",
    "review",
    "review_index",
]

REVIEW_SET = "quarry-reviews-v1"
DEFAULT_SEED = 19
SMALL_SET = 60  # tests and CI
TARGET_SET = 2_000  # the target run

#: Share of reviews per language (English first; the rest are the "reviews in other languages").
LANGUAGE_SHARES: tuple[tuple[str, float], ...] = (("en", 0.76), ("de", 0.08), ("es", 0.08), ("fr", 0.08))
_NOISE_SHARE = 0.3  # reviews with a sentence that mentions no aspect
_MAX_MENTIONS = 3


class Polarity(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"


Phrases = Mapping[str, tuple[str, ...]]  # language -> phrasings


@dataclass(frozen=True, slots=True)
class Aspect:
    """Something reviews praise or criticise, with its phrasings and the words that name it in a summary."""

    key: str
    label: str
    #: How a summary would put praise and criticism of it, in a few words (judge calibration, matching).
    pro: str
    con: str
    #: Regular expressions (lower case, matched at a word start) naming the aspect in a summary point, in
    #: any of the four languages; a point naming none is matched by meaning or judged by the model.
    keywords: tuple[str, ...]
    positive: Phrases
    negative: Phrases
    #: Product-wide aspects (price, build) give way to a product's own when a point names both.
    shared: bool = False

    def phrases(self, polarity: Polarity, language: str) -> tuple[str, ...]:
        table = self.positive if polarity is Polarity.POSITIVE else self.negative
        return table[language]

    def description(self, polarity: Polarity | None = None) -> str:
        """A short English description (for matching points by meaning)."""
        if polarity is None:
            return self.label
        return self.pro if polarity is Polarity.POSITIVE else self.con


@dataclass(frozen=True, slots=True)
class AspectProfile:
    aspect: Aspect
    frequency: float  # the chance that a review mentions it
    positive_share: float  # the chance that a mention praises it


@dataclass(frozen=True, slots=True)
class Product:
    key: str
    name: str
    profile: tuple[AspectProfile, ...]

    @property
    def aspects(self) -> dict[str, Aspect]:
        return {p.aspect.key: p.aspect for p in self.profile}


@dataclass(frozen=True, slots=True)
class Mention:
    aspect: str
    polarity: Polarity


@dataclass(frozen=True, slots=True)
class Review:
    id: str
    index: int
    product: str
    language: str
    rating: int
    text: str
    mentions: tuple[Mention, ...]
    seed: int = DEFAULT_SEED
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{product(self.product).name} review {self.index + 1:05d}"

    def fields(self) -> dict[str, Any]:
        """The document's user metadata: what a job filters on, and how the evaluation finds this review."""
        return {
            "product": self.product,
            "review_id": self.id,
            "review_set": REVIEW_SET,
            "review_seed": self.seed,
            "language": self.language,
            "rating": self.rating,
        }

    def polarity_of(self, aspect: str) -> Polarity | None:
        for mention in self.mentions:
            if mention.aspect == aspect:
                return mention.polarity
        return None


# --------------------------------------------------------------------------- phrasings

_VERY = ("really ", "very ", "incredibly ", "")


def _fill(template: str, very: str) -> str:
    return template.replace("{very}", very)


def _p(en: Sequence[str], de: Sequence[str], es: Sequence[str], fr: Sequence[str]) -> Phrases:
    return {"en": tuple(en), "de": tuple(de), "es": tuple(es), "fr": tuple(fr)}


PRICE = Aspect(
    key="price",
    label="price and value for money",
    pro="Good value for money",
    con="Too expensive",
    keywords=(
        r"pric",
        r"value",
        r"money",
        r"expensive",
        r"overpriced",
        r"worth (?:every|the (?:money|price)|it\b)",
        r"cost",
        r"afford",
        r"bargain",
        r"cheaper",
        r"preis",
        r"teuer",
        r"precio",
        r"caro",
        r"prix",
        r"cher\b",
        r"calidad-precio",
        r"qualité-prix",
    ),
    positive=_p(
        [
            "Great value for the price.",
            "Worth every penny.",
            "Cheaper than comparable models and just as good.",
            "The price is {very}fair for what you get.",
        ],
        ["Preis-Leistung ist top.", "Jeden Cent wert."],
        ["Muy buena relación calidad-precio.", "Vale cada céntimo."],
        ["Excellent rapport qualité-prix.", "Vaut chaque centime."],
    ),
    negative=_p(
        [
            "Way too expensive for what you get.",
            "Overpriced for what it is.",
            "The price is {very}high for this quality.",
            "Not worth the money.",
        ],
        ["Viel zu teuer für das, was man bekommt.", "Der Preis ist zu hoch."],
        ["Demasiado caro para lo que ofrece.", "El precio es excesivo."],
        ["Beaucoup trop cher pour ce que c'est.", "Le prix est trop élevé."],
    ),
    shared=True,
)
BUILD = Aspect(
    key="build",
    label="build quality and durability",
    pro="Solid build quality",
    con="Feels cheap and flimsy",
    keywords=(
        r"build",
        r"built",
        r"sturd",
        r"durab",
        r"solid",
        r"flims",
        r"construct",
        r"well made",
        r"plasticky",
        r"broke",
        r"fragil",
        r"verarbeit",
        r"robust",
        r"construcci",
        r"fabrication",
        r"premium",
    ),
    positive=_p(
        [
            "Solid build, it feels {very}sturdy.",
            "The build quality is excellent.",
            "Well made, nothing creaks or wobbles.",
            "Feels durable and premium.",
        ],
        ["Sehr solide verarbeitet.", "Die Verarbeitung ist hochwertig."],
        ["Muy bien construido y robusto.", "La calidad de construcción es excelente."],
        ["Très solide et bien fini.", "La qualité de fabrication est excellente."],
    ),
    negative=_p(
        [
            "The build feels {very}cheap and plasticky.",
            "Build quality is poor, a part cracked within a month.",
            "Flimsy construction.",
            "The casing broke after a few weeks.",
        ],
        ["Die Verarbeitung wirkt billig.", "Schlecht verarbeitet, nach einem Monat war etwas gebrochen."],
        ["Se siente barato y frágil.", "Mala calidad de construcción, se rompió al mes."],
        ["La fabrication fait bon marché.", "Mal construit, une pièce a cassé au bout d'un mois."],
    ),
    shared=True,
)

# --- headphones
SOUND = Aspect(
    key="sound",
    label="sound quality",
    pro="Great sound quality",
    con="Poor sound quality",
    keywords=(
        r"sound",
        r"audio",
        r"bass",
        r"music",
        r"treble",
        r"highs\b",
        r"klang",
        r"sonido",
        r"son\b",
        r"tinny",
        r"muddy",
        r"distort",
    ),
    positive=_p(
        [
            "The sound is {very}clear, with rich bass.",
            "Music sounds fantastic on these.",
            "Audio quality is {very}impressive.",
            "Crisp highs and deep bass, I love the sound.",
        ],
        ["Der Klang ist super klar und der Bass kräftig.", "Die Soundqualität ist hervorragend."],
        ["El sonido es muy claro y con buenos graves.", "La calidad de audio es excelente."],
        ["Le son est très clair avec de bonnes basses.", "La qualité audio est excellente."],
    ),
    negative=_p(
        [
            "The sound is {very}muddy and flat.",
            "Audio quality is disappointing, the bass is weak.",
            "Music sounds tinny on these.",
            "The sound distorts at higher volume.",
        ],
        ["Der Klang ist dumpf und flach.", "Die Soundqualität ist enttäuschend."],
        ["El sonido es apagado y plano.", "La calidad de audio es decepcionante."],
        ["Le son est étouffé et plat.", "La qualité audio est décevante."],
    ),
)
BATTERY = Aspect(
    key="battery",
    label="battery life",
    pro="Long battery life",
    con="Short battery life",
    keywords=(
        r"batter",
        r"charg",
        r"akku",
        r"bater",
        r"autonom",
        r"recharg",
        r"hours? of (?:use|playback)",
        r"runtime",
        r"\d+\s*(?:hours|hrs|h)\b",
    ),
    positive=_p(
        [
            "The battery lasts {very}long, easily a week of commuting.",
            "Battery life is excellent, I charge them once a week.",
            "I get over 30 hours on one charge.",
            "The battery never runs out on long flights.",
        ],
        ["Der Akku hält sehr lange, fast eine Woche.", "Die Akkulaufzeit ist ausgezeichnet."],
        ["La batería dura muchísimo, casi una semana.", "La autonomía de la batería es excelente."],
        ["La batterie tient très longtemps, presque une semaine.", "L'autonomie de la batterie est excellente."],
    ),
    negative=_p(
        [
            "The battery dies after a few hours.",
            "Battery life is {very}short, I charge them every day.",
            "The battery drains fast even when they are off.",
            "I barely get through a workday on one charge.",
        ],
        ["Der Akku ist nach wenigen Stunden leer.", "Die Akkulaufzeit ist viel zu kurz."],
        ["La batería se agota en pocas horas.", "La autonomía de la batería es muy corta."],
        ["La batterie se vide en quelques heures.", "L'autonomie de la batterie est trop courte."],
    ),
)
COMFORT = Aspect(
    key="comfort",
    label="wearing comfort",
    pro="Comfortable to wear",
    con="Uncomfortable after a while",
    keywords=(
        r"comfort",
        r"uncomfort",
        r"comfy",
        r"fit\b",
        r"fits\b",
        r"cushion",
        r"ear ?pads?",
        r"headband",
        r"tight",
        r"wear",
        r"ears? hurt",
        r"headache",
        r"bequem",
        r"unbequem",
        r"ohrpolster",
        r"bügel",
        r"cómod",
        r"incómod",
        r"almohadill",
        r"confort",
        r"inconfort",
        r"coussinet",
        r"arceau",
    ),
    positive=_p(
        [
            "They are {very}comfortable, even after hours of wear.",
            "The ear cushions are soft and they fit well.",
            "Light and comfy, I forget I am wearing them.",
            "Comfortable enough to wear all day.",
        ],
        ["Sie sind sehr bequem, auch nach Stunden.", "Die Ohrpolster sind weich und sitzen gut."],
        ["Son muy cómodos, incluso después de horas.", "Las almohadillas son suaves y ajustan bien."],
        ["Ils sont très confortables, même après des heures.", "Les coussinets sont doux et tiennent bien."],
    ),
    negative=_p(
        [
            "They get {very}uncomfortable after an hour.",
            "The headband presses on my head and my ears hurt.",
            "Too tight, they give me a headache.",
            "The ear cushions get hot and sweaty quickly.",
        ],
        ["Nach einer Stunde werden sie unbequem.", "Der Bügel drückt und die Ohren tun weh."],
        ["Se vuelven incómodos después de una hora.", "La diadema aprieta y me duelen las orejas."],
        ["Ils deviennent inconfortables après une heure.", "L'arceau serre et j'ai mal aux oreilles."],
    ),
)
ANC = Aspect(
    key="noise_cancelling",
    label="noise cancelling",
    pro="Effective noise cancelling",
    con="Weak noise cancelling",
    keywords=(r"noise", r"anc\b", r"cancel", r"geräusch", r"lärm", r"ruido", r"bruit", r"isolat"),
    positive=_p(
        [
            "The noise cancelling blocks out the train completely.",
            "Active noise cancellation is {very}effective.",
            "Great noise cancelling, the office goes silent.",
            "The ANC removes engine noise on planes.",
        ],
        [
            "Die Geräuschunterdrückung funktioniert hervorragend.",
            "Das Noise Cancelling blendet den Zuglärm komplett aus.",
        ],
        ["La cancelación de ruido funciona de maravilla.", "La cancelación de ruido bloquea el ruido del tren."],
        ["La réduction de bruit est très efficace.", "La réduction de bruit supprime le bruit du train."],
    ),
    negative=_p(
        [
            "The noise cancelling barely does anything.",
            "Noise cancellation is weak, I still hear everything.",
            "The ANC makes a constant hissing.",
            "Noise cancelling is {very}disappointing.",
        ],
        ["Die Geräuschunterdrückung ist schwach.", "Das Noise Cancelling bringt kaum etwas."],
        ["La cancelación de ruido apenas hace nada.", "La cancelación de ruido es muy débil."],
        ["La réduction de bruit ne sert presque à rien.", "La réduction de bruit est décevante."],
    ),
)
CONNECTION = Aspect(
    key="connection",
    label="Bluetooth connection",
    pro="Stable Bluetooth connection",
    con="Bluetooth connection drops",
    keywords=(
        r"bluetooth",
        r"connect",
        r"disconnect",
        r"pair",
        r"drop",
        r"cuts? out",
        r"verbindung",
        r"koppl",
        r"conexi",
        r"conect",
        r"connexion",
        r"appair",
        r"wireless link",
    ),
    positive=_p(
        [
            "Bluetooth pairing is instant and the connection is stable.",
            "They connect to my phone and laptop without any problem.",
            "The Bluetooth connection never drops.",
            "Pairing with my phone took seconds.",
        ],
        ["Die Bluetooth-Verbindung ist stabil.", "Das Koppeln mit dem Handy geht sofort."],
        ["La conexión Bluetooth es estable.", "Se conectan al móvil al instante."],
        ["La connexion Bluetooth est stable.", "L'appairage avec le téléphone est instantané."],
    ),
    negative=_p(
        [
            "The Bluetooth connection keeps dropping.",
            "They disconnect from my phone several times a day.",
            "Pairing is a nightmare, it fails half the time.",
            "The connection cuts out when my phone is in my pocket.",
        ],
        ["Die Bluetooth-Verbindung bricht ständig ab.", "Die Kopplung mit dem Handy scheitert oft."],
        ["La conexión Bluetooth se corta todo el rato.", "Se desconectan del móvil varias veces al día."],
        ["La connexion Bluetooth se coupe sans arrêt.", "Ils se déconnectent du téléphone plusieurs fois par jour."],
    ),
)

# --- coffee maker
TASTE = Aspect(
    key="taste",
    label="taste of the coffee",
    pro="Coffee tastes great",
    con="Coffee tastes bitter or weak",
    keywords=(
        r"tast",
        r"flavo",
        r"bitter",
        r"crema",
        r"aroma",
        r"watery",
        r"burnt",
        r"bland",
        r"delicious",
        r"strong\b",
        r"weak\b",
        r"(?:great|good|best|excellent|strong|weak) coffee",
        r"rich\b",
        r"smooth",
        r"geschmack",
        r"schmeck",
        r"sabor",
        r"sabe\b",
        r"goût",
        r"amer\b",
    ),
    positive=_p(
        [
            "The coffee tastes {very}rich and smooth.",
            "Makes the best coffee I have had at home.",
            "Great flavour, strong and never bitter.",
            "The espresso has a lovely crema and full taste.",
        ],
        ["Der Kaffee schmeckt vollmundig und aromatisch.", "Sehr guter Geschmack, kräftig und nie bitter."],
        ["El café sabe intenso y suave.", "Muy buen sabor, fuerte y nada amargo."],
        ["Le café est riche et onctueux.", "Très bon goût, corsé et jamais amer."],
    ),
    negative=_p(
        [
            "The coffee tastes bitter and burnt.",
            "Weak, watery coffee no matter the setting.",
            "The coffee has a plastic taste.",
            "The flavour is {very}bland.",
        ],
        ["Der Kaffee schmeckt bitter und verbrannt.", "Der Kaffee ist wässrig und fade."],
        ["El café sabe amargo y quemado.", "El café sale aguado y sin sabor."],
        ["Le café a un goût amer et brûlé.", "Le café est fade et aqueux."],
    ),
)
SPEED = Aspect(
    key="speed",
    label="brewing speed",
    pro="Brews quickly",
    con="Slow to brew",
    keywords=(
        r"fast",
        r"quick",
        r"slow",
        r"speed",
        r"brew(?:ing)? time",
        r"heats? up",
        r"takes? (?:ages|forever)",
        r"wait",
        r"minutes?",
        r"schnell",
        r"langsam",
        r"dauert",
        r"rápid",
        r"lent",
        r"tarda",
        r"vite",
        r"longtemps",
        r"éternité",
    ),
    positive=_p(
        [
            "It brews a full pot in just a few minutes.",
            "It heats up {very}quickly in the morning.",
            "Fast brewing, my coffee is ready before I finish my toast.",
            "A cup is ready in under a minute.",
        ],
        ["Die Maschine brüht in wenigen Minuten eine ganze Kanne.", "Sie heizt sehr schnell auf."],
        ["Prepara una jarra entera en pocos minutos.", "Se calienta muy rápido."],
        ["Elle prépare une verseuse entière en quelques minutes.", "Elle chauffe très vite."],
    ),
    negative=_p(
        [
            "Brewing takes forever.",
            "It is {very}slow to heat up.",
            "A full pot takes over fifteen minutes.",
            "I wait ages for one cup.",
        ],
        ["Das Brühen dauert ewig.", "Sie heizt sehr langsam auf."],
        ["Preparar el café tarda una eternidad.", "Tarda mucho en calentarse."],
        ["L'infusion prend une éternité.", "Elle met très longtemps à chauffer."],
    ),
)
CLEANING = Aspect(
    key="cleaning",
    label="cleaning and descaling",
    pro="Easy to clean",
    con="Hard to clean",
    keywords=(
        r"clean",
        r"descal",
        r"dishwasher",
        r"wash",
        r"mou?ld",
        r"grounds",
        r"maintenance",
        r"reinig",
        r"kaffeesatz",
        r"limpi",
        r"posos",
        r"nettoy",
        r"entretien",
        r"marc\b",
    ),
    positive=_p(
        [
            "Easy to clean, the parts go in the dishwasher.",
            "Cleaning takes a minute.",
            "Descaling is simple and painless.",
            "The removable parts make cleaning {very}easy.",
        ],
        ["Leicht zu reinigen, die Teile dürfen in die Spülmaschine.", "Die Reinigung geht schnell."],
        ["Fácil de limpiar, las piezas van al lavavajillas.", "La limpieza es rápida."],
        ["Facile à nettoyer, les pièces passent au lave-vaisselle.", "Le nettoyage est rapide."],
    ),
    negative=_p(
        [
            "Cleaning is a pain, coffee grounds get stuck everywhere.",
            "Hard to clean, the parts do not come apart.",
            "Descaling is a {very}messy chore.",
            "Mould builds up in places I cannot reach to clean.",
        ],
        ["Die Reinigung ist mühsam.", "Schwer zu reinigen, überall bleibt Kaffeesatz hängen."],
        ["Limpiarla es un fastidio.", "Difícil de limpiar, los posos se quedan en todas partes."],
        ["Le nettoyage est pénible.", "Difficile à nettoyer, le marc se coince partout."],
    ),
)
LOUDNESS = Aspect(
    key="noise",
    label="noise while brewing",
    pro="Quiet while brewing",
    con="Loud while brewing",
    keywords=(
        r"nois",
        r"loud",
        r"quiet",
        r"silent",
        r"rattl",
        r"deafen",
        r"laut",
        r"leise",
        r"ruid",
        r"silencios",
        r"bruy",
        r"silencieu",
        r"volume",
    ),
    positive=_p(
        [
            "It is {very}quiet, it does not wake anyone.",
            "Surprisingly silent while brewing.",
            "Quiet operation, unlike my old machine.",
            "The grinder is quieter than I expected.",
        ],
        ["Sie ist sehr leise.", "Angenehm leise beim Brühen."],
        ["Es muy silenciosa.", "Sorprendentemente silenciosa al preparar el café."],
        ["Elle est très silencieuse.", "Étonnamment silencieuse pendant l'infusion."],
    ),
    negative=_p(
        [
            "It is {very}loud, it wakes up the whole house.",
            "The pump is noisy and rattles.",
            "The grinder is deafening.",
            "Too noisy to use early in the morning.",
        ],
        ["Sie ist sehr laut.", "Die Pumpe ist laut und rattert."],
        ["Es muy ruidosa.", "La bomba hace mucho ruido."],
        ["Elle est très bruyante.", "La pompe est bruyante et vibre."],
    ),
)

# --- backpack
SPACE = Aspect(
    key="space",
    label="storage space and pockets",
    pro="Lots of storage space",
    con="Too little space",
    keywords=(
        r"spac",
        r"swallow",
        r"room",
        r"pocket",
        r"compartment",
        r"capacity",
        r"storage",
        r"cramped",
        r"small",
        r"fits?\b",
        r"organi",
        r"platz",
        r"fächer",
        r"espacio",
        r"bolsillo",
        r"compartimento",
        r"place\b",
        r"poches?\b",
        r"compartiment",
    ),
    positive=_p(
        [
            "Lots of room, my laptop and a change of clothes fit easily.",
            "The compartments are {very}well organised.",
            "Plenty of pockets for all my gear.",
            "Roomy inside, it swallows a weekend's worth of stuff.",
        ],
        ["Viel Platz, Laptop und Wechselkleidung passen locker hinein.", "Die Fächer sind sehr durchdacht."],
        ["Mucho espacio, caben el portátil y una muda de ropa.", "Los compartimentos están muy bien organizados."],
        [
            "Beaucoup de place, l'ordinateur et des vêtements tiennent facilement.",
            "Les compartiments sont très bien organisés.",
        ],
    ),
    negative=_p(
        [
            "It is smaller than it looks, hardly anything fits.",
            "Too few pockets, everything ends up in one heap.",
            "My laptop does not fit in the sleeve.",
            "The main compartment is {very}cramped.",
        ],
        ["Er ist kleiner als gedacht, kaum etwas passt hinein.", "Er hat zu wenige Fächer."],
        ["Es más pequeña de lo que parece, apenas cabe nada.", "Tiene muy pocos bolsillos."],
        ["Il est plus petit qu'il n'y paraît, presque rien ne rentre.", "Il a trop peu de poches."],
    ),
)
STRAPS = Aspect(
    key="straps",
    label="carrying comfort and straps",
    pro="Comfortable to carry",
    con="Straps hurt the shoulders",
    keywords=(
        r"strap",
        r"shoulder",
        r"carry",
        r"hip ?belt",
        r"back\b",
        r"padd",
        r"comfort",
        r"uncomfort",
        r"träger",
        r"tragen",
        r"trägt",
        r"correa",
        r"hombro",
        r"cómod",
        r"incómod",
        r"bretelle",
        r"épaule",
        r"porter",
        r"confort",
        r"inconfort",
    ),
    positive=_p(
        [
            "The padded straps make it {very}comfortable to carry.",
            "Comfortable on my back even on long hikes.",
            "The hip belt takes the weight off my shoulders.",
            "Carries well, no sore shoulders.",
        ],
        ["Die gepolsterten Träger sind sehr bequem.", "Trägt sich auch auf langen Wanderungen angenehm."],
        ["Las correas acolchadas la hacen muy cómoda de llevar.", "Es cómoda en la espalda incluso en rutas largas."],
        [
            "Les bretelles rembourrées le rendent très confortable à porter.",
            "Confortable sur le dos même en longue randonnée.",
        ],
    ),
    negative=_p(
        [
            "The straps dig into my shoulders.",
            "Uncomfortable to carry for more than an hour.",
            "The thin straps make my shoulders ache.",
            "It pulls on my back when it is full.",
        ],
        ["Die Träger schneiden in die Schultern.", "Er ist unbequem zu tragen."],
        ["Las correas se clavan en los hombros.", "Es incómoda de llevar."],
        ["Les bretelles scient les épaules.", "Il est inconfortable à porter."],
    ),
)
WATERPROOF = Aspect(
    key="waterproof",
    label="water resistance",
    pro="Keeps things dry in the rain",
    con="Not waterproof",
    keywords=(
        r"waterproof",
        r"water",
        r"rain",
        r"dry\b",
        r"wet\b",
        r"soak",
        r"leak",
        r"seams?",
        r"downpour",
        r"wasser",
        r"regen",
        r"impermeab",
        r"agua",
        r"lluvia",
        r"aguacero",
        r"étanche",
        r"imperméab",
        r"pluie",
        r"averse",
        r"eau\b",
    ),
    positive=_p(
        [
            "It kept everything dry in a downpour.",
            "The fabric is {very}water resistant.",
            "Stayed dry inside after hours of rain.",
            "Rain just runs off it.",
        ],
        ["Er hat bei Starkregen alles trocken gehalten.", "Der Stoff ist sehr wasserabweisend."],
        ["Mantuvo todo seco bajo un aguacero.", "La tela es muy impermeable."],
        ["Il a tout gardé au sec sous une averse.", "Le tissu est très imperméable."],
    ),
    negative=_p(
        [
            "Water leaks in as soon as it rains.",
            "Not waterproof at all, my laptop got wet.",
            "The seams let the rain through.",
            "Everything inside was soaked after a light shower.",
        ],
        ["Bei Regen dringt sofort Wasser ein.", "Er ist überhaupt nicht wasserdicht."],
        ["Entra agua en cuanto llueve.", "No es nada impermeable."],
        ["L'eau s'infiltre dès qu'il pleut.", "Il n'est pas du tout étanche."],
    ),
)
ZIPPERS = Aspect(
    key="zippers",
    label="zippers",
    pro="Sturdy zippers",
    con="Zippers break or snag",
    keywords=(r"zip", r"reißverschl", r"reissverschl", r"cremaller", r"fermeture"),
    positive=_p(
        [
            "The zippers run smoothly.",
            "Sturdy zippers that never catch.",
            "The zips are {very}solid.",
            "The zippers still work perfectly after a year.",
        ],
        ["Die Reißverschlüsse laufen leicht.", "Robuste Reißverschlüsse, die nie haken."],
        ["Las cremalleras se deslizan con suavidad.", "Cremalleras resistentes que nunca se atascan."],
        ["Les fermetures éclair glissent bien.", "Des fermetures éclair solides qui n'accrochent jamais."],
    ),
    negative=_p(
        [
            "The zipper broke after two weeks.",
            "The zippers snag all the time.",
            "A zip pull came off on the first trip.",
            "The zippers are {very}flimsy.",
        ],
        ["Der Reißverschluss ist nach zwei Wochen kaputt gegangen.", "Die Reißverschlüsse haken ständig."],
        ["La cremallera se rompió a las dos semanas.", "Las cremalleras se atascan todo el tiempo."],
        ["La fermeture éclair a cassé au bout de deux semaines.", "Les fermetures éclair accrochent tout le temps."],
    ),
)

#: Sentences that mention no aspect.
NOISE_SENTENCES: Mapping[str, tuple[str, ...]] = {
    "en": (
        "Bought this as a gift for my brother.",
        "I have been using it for about a month now.",
        "This is my second one.",
        "Ordered it after reading a lot of reviews.",
        "My partner uses it too.",
        "I use it every day.",
        "Arrived on time.",
    ),
    "de": ("Ich habe es als Geschenk gekauft.", "Ich benutze es seit einem Monat.", "Kam pünktlich an."),
    "es": ("Lo compré como regalo.", "Lo uso desde hace un mes.", "Llegó a tiempo."),
    "fr": ("Je l'ai acheté comme cadeau.", "Je l'utilise depuis un mois.", "Arrivé à temps."),
}

PRODUCTS: tuple[Product, ...] = (
    Product(
        key="aurora-x2",
        name="Aurora X2 wireless headphones",
        profile=(
            AspectProfile(SOUND, 0.40, 0.85),
            AspectProfile(BATTERY, 0.30, 0.80),
            AspectProfile(COMFORT, 0.25, 0.30),
            AspectProfile(ANC, 0.20, 0.75),
            AspectProfile(CONNECTION, 0.16, 0.15),
            AspectProfile(PRICE, 0.18, 0.25),
            AspectProfile(BUILD, 0.06, 0.50),
        ),
    ),
    Product(
        key="brewmaster-500",
        name="Brewmaster 500 coffee maker",
        profile=(
            AspectProfile(TASTE, 0.40, 0.90),
            AspectProfile(SPEED, 0.22, 0.80),
            AspectProfile(CLEANING, 0.25, 0.20),
            AspectProfile(LOUDNESS, 0.18, 0.15),
            AspectProfile(PRICE, 0.20, 0.75),
            AspectProfile(BUILD, 0.08, 0.25),
        ),
    ),
    Product(
        key="trailpack-30",
        name="Trailpack 30L hiking backpack",
        profile=(
            AspectProfile(SPACE, 0.35, 0.85),
            AspectProfile(STRAPS, 0.28, 0.75),
            AspectProfile(WATERPROOF, 0.22, 0.25),
            AspectProfile(ZIPPERS, 0.18, 0.20),
            AspectProfile(PRICE, 0.16, 0.80),
            AspectProfile(BUILD, 0.08, 0.80),
        ),
    ),
)
_BY_KEY = {p.key: p for p in PRODUCTS}
_ID = re.compile(r"^review-(\d{5})$")


def product(key: str) -> Product:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise InvalidInput(f"unknown product {key!r}: one of {', '.join(_BY_KEY)}") from None


def _language(rng: random.Random) -> str:
    draw = rng.random()
    for language, share in LANGUAGE_SHARES:
        if draw < share:
            return language
        draw -= share
    return LANGUAGE_SHARES[0][0]


def _mentions(rng: random.Random, item: Product) -> list[Mention]:
    mentions = [
        Mention(p.aspect.key, Polarity.POSITIVE if rng.random() < p.positive_share else Polarity.NEGATIVE)
        for p in item.profile
        if rng.random() < p.frequency
    ]
    if not mentions:  # every review says something: its product's most talked-about aspect
        top = item.profile[0]
        mentions = [
            Mention(top.aspect.key, Polarity.POSITIVE if rng.random() < top.positive_share else Polarity.NEGATIVE)
        ]
    if len(mentions) > _MAX_MENTIONS:
        mentions = rng.sample(mentions, _MAX_MENTIONS)
    return mentions


def _rating(mentions: Sequence[Mention]) -> int:
    balance = sum(1 if m.polarity is Polarity.POSITIVE else -1 for m in mentions) / len(mentions)
    return max(1, min(5, round(3 + 2 * balance)))


def review(index: int, *, seed: int = DEFAULT_SEED) -> Review:
    """Review ``index`` of the set seeded with ``seed``; the same review whatever the size of the set."""
    if index < 0 or index > 99_999:
        raise InvalidInput(f"review index must be within 0..99999, got {index}")
    rng = random.Random(f"{REVIEW_SET}:{seed}:{index}")
    item = PRODUCTS[index % len(PRODUCTS)]
    language = _language(rng)
    mentions = _mentions(rng, item)
    aspects = item.aspects
    sentences = [
        _fill(rng.choice(aspects[m.aspect].phrases(m.polarity, language)), rng.choice(_VERY)) for m in mentions
    ]
    if len(sentences) < _MAX_MENTIONS and rng.random() < _NOISE_SHARE:
        sentences.append(rng.choice(NOISE_SENTENCES[language]))
    rng.shuffle(sentences)
    return Review(
        id=f"review-{index:05d}",
        index=index,
        product=item.key,
        language=language,
        rating=_rating(mentions),
        text=" ".join(sentences),
        mentions=tuple(mentions),
        seed=seed,
    )


def review_index(review_id: str) -> int:
    """The index encoded in a review id (``review-00042`` -> 42)."""
    match = _ID.match(review_id)
    if match is None:
        raise InvalidInput(f"not a review id: {review_id!r}")
    return int(match.group(1))


def generate_reviews(count: int, *, seed: int = DEFAULT_SEED, products: Iterable[str] | None = None) -> list[Review]:
    """The first ``count`` reviews of the set (all products), or only those of ``products``."""
    if count < 1:
        raise InvalidInput("count must be at least 1")
    wanted = None if products is None else {product(key).key for key in products}
    reviews = (review(index, seed=seed) for index in range(count))
    return [r for r in reviews if wanted is None or r.product in wanted]


def aspect_counts(reviews: Iterable[Review]) -> Counter[tuple[str, Polarity]]:
    """How many reviews mention each (aspect, polarity)."""
    counts: Counter[tuple[str, Polarity]] = Counter()
    for item in reviews:
        for mention in item.mentions:
            counts[(mention.aspect, mention.polarity)] += 1
    return counts
