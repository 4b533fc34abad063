"""What happens in the demo: Sunrise Solar's customers in Ghana, Kenya and Nigeria, a month of it.

Pure data: each :class:`Story` is one customer and what they and the team did, step by step,
with the minutes between steps. ``crm.demo_play`` plays every step through the real service
code, in time order. A handful of showcase stories are written out (they are what the README's
screenshots show); the rest are drawn from short scenarios with a seeded random generator, so
the same demo comes out on every run.

Times are UTC: Ghana is UTC+0, Nigeria UTC+1, Kenya UTC+3.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import phonenumbers

# -- when --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """A day relative to today at a time of day (``days`` <= -2, so a story that spans less than
    a day never reaches the future), or a number of minutes before now (recent stories)."""

    days: int | None = None
    clock: str = "09:00"
    minutes_ago: float | None = None

    def resolve(self, now: datetime) -> datetime:
        if self.minutes_ago is not None:
            return now - timedelta(minutes=self.minutes_ago)
        if self.days is None or self.days > -2:
            raise ValueError("a story on a day starts two days back or more")
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(days=self.days) + _clock(self.clock)


def _clock(value: str) -> timedelta:
    parsed = time.fromisoformat(value)
    return timedelta(hours=parsed.hour, minutes=parsed.minute)


def day(days: int, clock: str) -> Moment:
    return Moment(days=days, clock=clock)


def ago(*, hours: float = 0, minutes: float = 0) -> Moment:
    return Moment(minutes_ago=hours * 60 + minutes)


# -- who -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    phone: str  # E.164
    country: str  # GH | KE | NG
    channel: str = "sms"  # where they write to us: sms | whatsapp
    rep: str = "esi"  # who on the team answers them when nobody owns them yet

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


# -- what ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class In:
    """A message from the customer (SMS or WhatsApp)."""

    text: str
    channel: str | None = None  # default: the person's channel


@dataclass(frozen=True)
class Reply:
    """A rep answers on the conversation's channel (the owner, else the person's rep)."""

    text: str
    channel: str | None = None
    read: bool = False  # WhatsApp: the customer read it


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Ussd:
    """A USSD session: the keys pressed screen by screen, then the gateway's end status
    (``Success``, or ``Incomplete`` when the customer walked away)."""

    inputs: tuple[str, ...]
    end: str = "Success"
    code: str = "*920*44#"


@dataclass(frozen=True)
class Call:
    """An inbound call. ``kind``: ``menu`` (keys through the menu), ``answered`` (asked for a
    person and a rep picked up), ``missed`` (nobody picked up, no message), ``voicemail``
    (nobody picked up, a message left), ``hung_up`` (gone before we answered)."""

    kind: str
    keys: tuple[str, ...] = ()
    seconds: int = 60
    transcript: str | None = None
    speech: bool = False  # asked for a person by saying "agent" rather than pressing 0


@dataclass(frozen=True)
class OpenDeal:
    title: str
    amount: int
    currency: str
    stage: str = "qualified"


@dataclass(frozen=True)
class MoveDeal:
    stage: str
    lost_reason: str | None = None


@dataclass(frozen=True)
class Edit:
    """A rep edits the contact (tags, attributes, email, lifecycle stage)."""

    changes: dict[str, Any]


@dataclass(frozen=True)
class Thread:
    """The conversation is ``closed``, ``snoozed`` (for ``days``) or marked ``read``."""

    status: str
    days: float = 0


@dataclass(frozen=True)
class HandoffStep:
    """The person's active handoff is ``accept``-ed, ``reject``-ed (with ``reason``) or left to
    run out (``escalate``: its SLA check runs at the deadline)."""

    action: str
    reason: str | None = None


Step = In | Reply | Note | Ussd | Call | OpenDeal | MoveDeal | Edit | Thread | HandoffStep


@dataclass(frozen=True)
class Story:
    person: Person
    start: Moment
    steps: tuple[tuple[float, Step], ...]  # (minutes after the previous step, step)
    # A hot lead this story does not answer itself gets a reply from its rep within the SLA
    # (as a real team would); False leaves the handoff open (its SLA running).
    follow_up: bool = True


# -- the team --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    key: str
    email: str
    role: str
    name: str
    phone: str | None = None
    timezone: str = "Africa/Accra"
    lead_cap: int | None = None


TEAM = (
    Member("admin", "admin@example.com", "admin", "Abena Owusu"),
    Member("marketer", "marketer@example.com", "marketer", "Yaw Darko"),
    # No phones on the team: a notification SMS (a hot lead, an escalation) goes to a
    # user's phone through the live provider when credentials are set, and the demo's SLA
    # checks still run in the worker after seeding.
    Member("esi", "rep@example.com", "rep", "Esi Boateng", lead_cap=15),
    Member(
        "brian", "rep2@example.com", "rep", "Brian Otieno", timezone="Africa/Nairobi", lead_cap=15
    ),
)

# -- the catalogue -----------------------------------------------------------------------------

CURRENCY = {"GH": "GHS", "KE": "KES", "NG": "NGN"}
# product: (name as customers say it, price per currency, daily pay-as-you-go price)
PRODUCTS: dict[str, tuple[str, dict[str, int], dict[str, int]]] = {
    "lamp": (
        "solar lamp",
        {"GHS": 350, "KES": 3500, "NGN": 45000},
        {"GHS": 5, "KES": 50, "NGN": 600},
    ),
    "home": (
        "home kit",
        {"GHS": 1200, "KES": 14000, "NGN": 150000},
        {"GHS": 12, "KES": 120, "NGN": 1500},
    ),
    "tv": (
        "solar TV package",
        {"GHS": 3900, "KES": 38000, "NGN": 420000},
        {"GHS": 30, "KES": 300, "NGN": 3800},
    ),
    "fridge": (
        "100 litre fridge",
        {"GHS": 6500, "KES": 65000, "NGN": 780000},
        {"GHS": 45, "KES": 450, "NGN": 6000},
    ),
    "pump": (
        "water pump",
        {"GHS": 4800, "KES": 48000, "NGN": 520000},
        {"GHS": 35, "KES": 350, "NGN": 4500},
    ),
}


def money(currency: str, amount: int) -> str:
    return f"{currency} {amount:,}"


# -- the showcase ------------------------------------------------------------------------------

AMA = Person("ama", "Ama Mensah", "+233244512873", "GH", "whatsapp")
WANJIRU = Person("wanjiru", "Wanjiru Kamau", "+254712345678", "KE", "whatsapp", "brian")
KWAME = Person("kwame_o", "Kwame Owusu", "+233554019283", "GH")
CHINEDU = Person("chinedu", "Chinedu Okafor", "+2348031234567", "NG")
ABDUL = Person("abdul", "Abdul-Rahman Iddrisu", "+233209876541", "GH", "whatsapp")
GRACE = Person("grace", "Grace Akinyi", "+254722804117", "KE", rep="brian")
PETER = Person("peter", "Peter Mwangi", "+254733219864", "KE", rep="brian")
MUSA = Person("musa", "Musa Ibrahim", "+2348065512340", "NG")
ESTHER = Person("esther", "Esther Wambui", "+254711458203", "KE", "whatsapp", "brian")
KOFI_M = Person("kofi_m", "Kofi Mensah", "+233245567120", "GH")
JOYCE = Person("joyce", "Joyce Nyambura", "+254720118346", "KE", "whatsapp", "brian")
KOFI = Person("kofi", "Kofi Asante", "+233243889012", "GH")
FATIMA = Person("fatima", "Fatima Bello", "+2348139945521", "NG", "whatsapp")
SAMUEL = Person("samuel", "Samuel Kiprop", "+254724660915", "KE", rep="brian")
HALIMA = Person("halima", "Halima Yusuf", "+2348167723094", "NG")
GLORIA = Person("gloria", "Gloria Addo", "+233547712308", "GH", "whatsapp")
DANIEL = Person("daniel", "Daniel Ochieng", "+254701229845", "KE", rep="brian")
EMEKA = Person("emeka", "Emeka Nwosu", "+2348025518734", "NG", "whatsapp")
SELASI = Person("selasi", "Selasi Agbeko", "+233261408735", "GH")
JOSEPH = Person("joseph", "Joseph Kamau", "+254798114502", "KE", "whatsapp", "brian")

SHOWCASE: tuple[Story, ...] = (
    # A new lead a few minutes old: SLA running, close to its deadline.
    Story(
        AMA,
        ago(minutes=58),
        (
            (0, In("Hello. Please do you deliver to Madina?")),
            (7, In("Where is your shop? I can also come and see")),
            (39, In("I want 2 of the solar TV packages for my shop. Please call me")),
        ),
        follow_up=False,
    ),
    Story(
        WANJIRU,
        ago(minutes=27),
        (
            (0, In("Habari! Do you have the 100 litre fridge? I sell cold drinks in Githurai 45")),
            (8, In("What is the deposit on pay as you go?")),
            (15, In("Sawa, I want to order this week. Can someone call me?")),
        ),
        follow_up=False,
    ),
    # A call back requested on USSD a few minutes ago.
    Story(
        KWAME,
        ago(hours=2, minutes=15),
        (
            (0, Ussd(("3", "Kwame Owusu", "6"))),
            (126, Ussd(("4",))),
        ),
        follow_up=False,
    ),
    # A customer whose kit broke: a rep, a note, and he is angry again this afternoon.
    Story(
        CHINEDU,
        day(-26, "10:40"),
        (
            (0, In("Good morning, how much is the home kit? I am in Surulere, Lagos")),
            (
                9,
                Reply(
                    "Good morning Chinedu! The home kit (3 lights, radio, phone charging) is "
                    "NGN 150,000, or NGN 1,500 a day on pay-as-you-go. Delivery in Lagos is "
                    "free."
                ),
            ),
            (25, In("Ok I will take it. I will pay full by transfer")),
            (4, OpenDeal("Home kit - Chinedu Okafor", 150000, "NGN", "proposal")),
            (180, MoveDeal("won")),
            (1, Reply("Payment received, thank you! Delivery is booked for Thursday morning.")),
            (60 * 20, Thread("closed")),
        ),
    ),
    Story(
        CHINEDU,
        ago(hours=27),
        (
            (0, In("My home kit stopped charging after 3 weeks. I am not happy at all")),
            (
                22,
                Reply(
                    "So sorry to hear that, Chinedu. It is under warranty: our technician "
                    "Musa will come to Surulere tomorrow between 10 and 12 to replace the "
                    "battery."
                ),
            ),
            (
                3,
                Note(
                    "Booked Musa for tomorrow 10:00. Probably the battery from the March "
                    "batch, replace under warranty."
                ),
            ),
            (
                60 * 23 + 20,
                In("Nobody came today. I took a day off work for this. Very disappointing"),
            ),
        ),
    ),
    Story(
        ABDUL,
        ago(hours=31),
        (
            (0, In("Salaam. How much is the TV package? The 24 inch")),
            (
                6,
                Reply(
                    "Wa alaikum salaam Abdul-Rahman! The solar TV package is GHS 3,900, or "
                    "GHS 30 a day on pay-as-you-go after a GHS 400 deposit.",
                    read=True,
                ),
            ),
            (14, In("Ok. I will get my salary on the 28th, then I will take it")),
            (5, Reply("No problem, I will message you on the 28th. Have a good week!", read=True)),
            (1, Thread("snoozed", days=4)),
        ),
    ),
    Story(
        GRACE,
        ago(hours=5, minutes=10),
        (
            (
                0,
                Call(
                    "voicemail",
                    seconds=52,
                    transcript=(
                        "Hello, this is Grace Akinyi calling about the solar fridge for my shop in "
                        "Kisumu. Please call me back on this number. Thank you."
                    ),
                ),
            ),
            (
                25,
                Note(
                    "Called her back: she wants the fridge on pay-as-you-go for her shop in "
                    "Kisumu. Visiting her on Friday."
                ),
            ),
            (
                1,
                Edit(
                    {
                        "name": "Grace Akinyi",
                        "lifecycle_stage": "sql",
                        "attributes": {"town": "Kisumu", "customer_type": "business"},
                    }
                ),
            ),
        ),
    ),
    Story(
        PETER,
        ago(hours=50),
        (
            (0, Call("answered", seconds=236)),
            (
                6,
                Edit(
                    {
                        "name": "Peter Mwangi",
                        "lifecycle_stage": "sql",
                        "attributes": {"town": "Nakuru"},
                        "tags": ["pay-as-you-go"],
                    }
                ),
            ),
            (
                2,
                Note(
                    "Peter wants the TV package before the league starts. Prefers "
                    "pay-as-you-go, can put KES 3,000 down. Sending the proposal by SMS."
                ),
            ),
            (3, OpenDeal("Solar TV package - Peter Mwangi", 38000, "KES", "proposal")),
            (
                4,
                Reply(
                    "Hi Peter, Sunrise Solar here. As discussed: TV package KES 38,000, "
                    "or KES 3,000 deposit then KES 300 a day. Reply YES and I will book the "
                    "installation."
                ),
            ),
        ),
    ),
    Story(
        MUSA,
        ago(hours=3, minutes=20),
        (
            (0, Call("missed", seconds=41)),
            (
                19,
                In(
                    "I called but nobody picked. Do you have solar pump for irrigation? I am "
                    "in Kano"
                ),
            ),
        ),
    ),
    Story(
        ESTHER,
        ago(minutes=44),
        ((0, In("Hi, has my order left Nairobi? It is order SS-4471, the home kit")),),
    ),
    Story(
        KOFI_M,
        ago(hours=1, minutes=35),
        (
            (0, In("Please what time do you open on Saturday?")),
            (12, In("Ok I will come on Saturday with my brother to see the fridge")),
        ),
    ),
    Story(
        JOYCE,
        ago(hours=20),
        (
            (0, In("Asante sana! The lamp works very well, my children can study at night now")),
            (
                11,
                Reply(
                    "Karibu Joyce, that is wonderful to hear! Tell your neighbours, they "
                    "get 10% off with your name.",
                    read=True,
                ),
            ),
            (2, Thread("closed")),
        ),
    ),
    # Older stories: a won pump, a wholesale buyer, an escalation, a rejection...
    Story(
        KOFI,
        day(-19, "08:15"),
        (
            (0, In("Good morning. I farm tomatoes near Akumadan. How much is the water pump?")),
            (
                14,
                Reply(
                    "Good morning Kofi! The solar water pump is GHS 4,800 with the panel, "
                    "or GHS 35 a day. It lifts water up to 30 m."
                ),
            ),
            (40, In("Can it water 2 acres? I want to buy before the dry season")),
            (
                8,
                Reply(
                    "Yes, 2 acres is fine with drip lines. I can come on Friday to check your well."
                ),
            ),
            (10, OpenDeal("Solar water pump - Kofi Asante", 4800, "GHS", "qualified")),
        ),
    ),
    Story(
        KOFI,
        day(-16, "11:30"),
        (
            (0, MoveDeal("proposal")),
            (1, Note("Visited the farm: 12 m well, 2 acres. Pump plus 40 m of pipe.")),
            (60 * 22, In("I have sent the money by MoMo, reference 80211347")),
            (9, MoveDeal("won")),
            (2, Reply("Received, thank you Kofi! Installation is on Monday.")),
        ),
    ),
    Story(
        KOFI,
        day(-8, "17:05"),
        (
            (0, In("The pump is working very well. My tomatoes are happy. Thank you Sunrise!")),
            (30, Reply("Great news Kofi, thank you for telling us!")),
            (1, Thread("closed")),
        ),
    ),
    Story(
        FATIMA,
        day(-8, "09:20"),
        (
            (
                0,
                In(
                    "Salam. I have a shop in Kano, I want 20 solar lamps. What is your best "
                    "price for wholesale?"
                ),
            ),
            (
                16,
                Reply(
                    "Hello Fatima! For 20 lamps we can do NGN 42,500 each, NGN 850,000 in "
                    "total, delivery to Kano included.",
                    read=True,
                ),
            ),
            (
                5,
                Edit(
                    {
                        "tags": ["wholesale"],
                        "attributes": {"customer_type": "business", "town": "Kano"},
                    }
                ),
            ),
            (3, OpenDeal("20 solar lamps (wholesale) - Fatima Bello", 850000, "NGN", "proposal")),
            (
                60 * 5,
                In(
                    "It is too much. Other people give me 40,000. Can you do 40,000 and I "
                    "pay half now?"
                ),
            ),
            (25, Reply("Let me ask my manager and come back to you tomorrow morning.", read=True)),
            (2, MoveDeal("negotiation")),
        ),
    ),
    Story(
        SAMUEL,
        day(-6, "07:40"),
        (
            (0, In("I need a price for 5 home kits for our school in Eldoret. Please call me")),
            (16, HandoffStep("escalate")),
            (
                4,
                Reply(
                    "Hello Samuel, sorry for the wait. 5 home kits are KES 70,000, and "
                    "schools get free installation. When can I visit?"
                ),
            ),
            (30, In("Come on Thursday at 10am. Ask for the head teacher")),
            (3, OpenDeal("5 home kits for Eldoret school - Samuel Kiprop", 70000, "KES")),
        ),
    ),
    Story(
        HALIMA,
        day(-9, "12:10"),
        (
            (
                0,
                In("Sannu. I need solar lamps for my shop, please call me. Hausa is better for me"),
            ),
            (3, HandoffStep("reject", "wrong_language")),
            (7, Reply("Sannu Halima! I speak Hausa, I will call you in 5 minutes.")),
            (15, Note("Called her in Hausa. Wants 4 lamps, will pay on delivery.")),
            (2, OpenDeal("4 solar lamps - Halima Yusuf", 180000, "NGN", "qualified")),
        ),
    ),
    Story(
        GLORIA,
        day(-7, "13:45"),
        ((0, In("Please stop sending me these messages, I am not interested anymore")),),
    ),
    # Stopped promotions on the USSD menu: the campaign leaves him out.
    Story(SELASI, day(-16, "19:05"), ((0, Ussd(("1", "2"))), (3, Ussd(("5",))))),
    Story(
        DANIEL,
        day(-15, "06:30"),
        (
            (0, In("Hello do you buy used car batteries?")),
            (20, Reply("Hi Daniel, sorry, we only sell and service solar kits.")),
            (3, Edit({"lifecycle_stage": "disqualified", "lifecycle_reason": "wrong_fit"})),
            (1, Thread("closed")),
        ),
    ),
    Story(
        EMEKA,
        day(-22, "10:05"),
        (
            (0, In("Good day. How much is the solar TV package?")),
            (
                12,
                Reply(
                    "Good day Emeka! The solar TV package is NGN 420,000, or NGN 3,800 a day.",
                    read=True,
                ),
            ),
            (20, In("I am interested, I want to buy it for my parents in Enugu")),
            (6, OpenDeal("Solar TV package - Emeka Nwosu", 420000, "NGN", "proposal")),
            (60 * 20, MoveDeal("negotiation")),
            (60 * 3, In("Sorry I found one for 350,000 at Computer Village. I will leave it")),
            (18, MoveDeal("lost", "price")),
            (1, Reply("No problem Emeka, thank you for telling us.", read=True)),
            (1, Thread("closed")),
        ),
    ),
    Story(
        JOSEPH,
        day(-17, "05:50"),
        (
            (0, In("START")),
            (2, In("Please send me your price list")),
            (
                10,
                Reply(
                    "Karibu Joseph! Lamp KES 3,500, home kit KES 14,000, TV package KES "
                    "38,000, fridge KES 65,000. All on pay-as-you-go too.",
                    read=True,
                ),
            ),
            (45, In("I want the TV package. How do I pay with M-Pesa?")),
            (6, Reply("Paybill 522533, account SS-JK. The deposit is KES 3,000.", read=True)),
            (4, OpenDeal("Solar TV package - Joseph Kamau", 38000, "KES", "negotiation")),
            (60 * 22, In("I have paid the deposit, M-Pesa code QFT7HX2L9K")),
            (5, MoveDeal("won")),
            (2, Reply("Asante Joseph, received! Installation on Saturday morning.", read=True)),
        ),
    ),
)

# People who only ever dial the USSD menu: sessions ended at different screens (a USSD session
# carries no name, so these contacts stay nameless unless they type one in).
USSD_WALKERS: tuple[Story, ...] = (
    Story(
        Person("walker_gh1", "Yaw Mensah", "+233243118760", "GH"),
        day(-23, "17:40"),
        ((0, Ussd(("1",), "Incomplete")), (6, Ussd(("1", "4")))),
    ),
    Story(
        Person("walker_ke1", "Kevin Mutai", "+254722550193", "KE"),
        day(-18, "06:12"),
        ((0, Ussd((), "Incomplete", "*384*1234#")), (90, Ussd(("1", "6"), code="*384*1234#"))),
    ),
    Story(
        Person("walker_gh2", "Akosua Boakye", "+233551907342", "GH"),
        day(-10, "12:55"),
        ((0, Ussd(("3", "Akosua Boakye"), "Incomplete")),),
    ),
    Story(
        Person("walker_ng1", "Ibrahim Sule", "+2348034471902", "NG"),
        day(-5, "15:30"),
        ((0, Ussd(("6",), "Incomplete", "*347*88#")), (4, Ussd((), "Failed", "*347*88#"))),
    ),
    Story(
        Person("walker_gh3", "Esi Mensah", "+233209337415", "GH"),
        day(-3, "10:20"),
        ((0, Ussd(("1", "1"))),),
    ),
)

# -- the fair, the campaign and the segments ------------------------------------------------------

FAIR_DAY = day(-20, "11:00")
# Sign-ups from the Kumasi agric fair, imported as a CSV (crm.importer).
FAIR_LEADS: tuple[dict[str, str], ...] = (
    {"name": "Akosua Frimpong", "phone": "0244 718 209", "town": "Ejisu"},
    {
        "name": "Kwabena Ofori",
        "phone": "0554 302 118",
        "town": "Kumasi",
        "customer_type": "business",
    },
    {"name": "Efua Quaye", "phone": "0208 451 376", "town": "Obuasi"},
    {"name": "Yaa Asantewaa", "phone": "0243 665 091", "town": "Konongo"},
    {"name": "Nana Agyeman", "phone": "0277 190 254", "town": "Kumasi"},
    {"name": "Adwoa Sarpong", "phone": "0501 382 677", "town": "Mampong"},
    {"name": "Yaw Osei", "phone": "0246 903 155", "town": "Techiman", "customer_type": "business"},
    {"name": "Comfort Appiah", "phone": "0549 277 610", "town": "Bekwai"},
    {"name": "Kojo Antwi", "phone": "0265 118 493", "town": "Offinso"},
    {"name": "Abena Kyei", "phone": "0591 640 827", "town": "Kumasi"},
    {"name": "Kwesi Badu", "phone": "0244 586 330", "town": "Nkawie"},
    {"name": "Afia Dankwa", "phone": "0557 913 402", "town": "Agogo"},
    {
        "name": "Ebo Mensah",
        "phone": "0209 334 871",
        "town": "Kumasi",
        "email": "ebo.mensah@example.com",
    },
    {"name": "Akua Donkor", "phone": "0245 770 916", "town": "Ejura"},
)

SEGMENTS_AT = day(-14, "15:10")
SEGMENTS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "Ghana leads, not yet customers",
        {
            "countries": ["GH"],
            "stages": ["subscriber", "lead", "mql"],
            "exclude_tags": ["wholesale"],
        },
    ),
    ("Wholesale buyers", {"tags": ["wholesale"]}),
    ("Kenya, opted in on WhatsApp", {"countries": ["KE"], "consent": {"whatsapp": "opted_in"}}),
)
CAMPAIGN_CREATED = day(-13, "16:30")
CAMPAIGN_LAUNCH = day(-12, "09:00")
CAMPAIGN: dict[str, Any] = {
    "name": "Harmattan lamp offer",
    "channel": "sms",
    "sender": "MG" + "5a1e" * 8,  # a Messaging Service
    "body": (
        "Hi {{ first_name | default('there') }}, Sunrise Solar here: this week the solar lamp "
        "with phone charger is GHS 298 (was 350), delivered free. Reply YES to order. Reply "
        "STOP to opt out."
    ),
    "timezone": "Africa/Accra",
    "quiet_start": None,
    "quiet_end": None,
}
# Recipients whose message did not arrive (handset off, number gone), by fair-lead name.
UNDELIVERED = {"Kojo Antwi": "30003", "Afia Dankwa": "30005"}
DRAFT_AT = day(-2, "15:20")
DRAFT: dict[str, Any] = {
    "name": "Kenya: solar TV for the football season",
    "channel": "whatsapp",
    "body": (
        "Habari {{ first_name | default('rafiki') }}! Watch every match on your own solar TV: "
        "KES 3,000 down, then KES 300 a day. Reply TV and we will call you."
    ),
    "timezone": "Africa/Nairobi",
}


def fair_person(name: str, phone: str) -> Person:
    """A fair lead as a person of the stories (the import created their contact)."""
    return Person(name.split()[0].lower(), name, _ghana(phone), "GH")


def _ghana(local: str) -> str:
    number = phonenumbers.parse(local, "GH")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


AKOSUA = fair_person("Akosua Frimpong", "0244 718 209")
KWABENA = fair_person("Kwabena Ofori", "0554 302 118")
EFUA = fair_person("Efua Quaye", "0208 451 376")
YAA = fair_person("Yaa Asantewaa", "0243 665 091")
NANA = fair_person("Nana Agyeman", "0277 190 254")

# Answers to the campaign (attributed to it: a reply rate, an opt-out, revenue).
CAMPAIGN_STORIES: tuple[Story, ...] = (
    Story(
        AKOSUA,
        day(-12, "09:26"),
        (
            (0, In("YES! I want 2 lamps please. Can you deliver to Ejisu?")),
            (
                11,
                Reply(
                    "Hi Akosua! Yes, 2 lamps are GHS 596 delivered to Ejisu. Pay by MoMo to "
                    "0302 000 000, reference your name."
                ),
            ),
            (
                3,
                OpenDeal(
                    "2 solar lamps (Harmattan offer) - Akosua Frimpong", 596, "GHS", "proposal"
                ),
            ),
            (48, In("Paid. MoMo ref 66120934")),
            (6, MoveDeal("won")),
            (1, Reply("Thank you Akosua, your lamps leave Kumasi tomorrow morning.")),
            (2, Thread("closed")),
        ),
    ),
    Story(
        KWABENA,
        day(-12, "10:02"),
        (
            (0, In("Is the offer also for the home kit? I want one for my shop")),
            (
                18,
                Reply(
                    "Hi Kwabena, the offer is for lamps only, but the home kit is GHS 1,200 "
                    "and I can add a lamp free for your shop."
                ),
            ),
            (4, OpenDeal("Home kit + free lamp - Kwabena Ofori", 1200, "GHS", "proposal")),
            (60 * 26, In("Ok I agree. I will pay on Friday")),
            (10, MoveDeal("negotiation")),
        ),
    ),
    Story(
        KWABENA,
        day(-9, "15:40"),
        (
            (0, In("I have paid 1,200 by MoMo. Ref 71540288")),
            (7, MoveDeal("won")),
            (1, Reply("Received, thank you Kwabena! Our installer will call you.")),
        ),
    ),
    Story(EFUA, day(-12, "09:05"), ((0, In("STOP")),)),
    Story(
        YAA,
        day(-12, "12:30"),
        (
            (0, In("Please is it pay small small? I can pay 3 cedis a day")),
            (25, Reply("Hi Yaa, the lamp is GHS 5 a day after a GHS 50 deposit.")),
            (3, OpenDeal("Solar lamp (pay-as-you-go) - Yaa Asantewaa", 350, "GHS")),
            (60 * 30, In("It is too much for me now. Maybe after harvest")),
            (9, MoveDeal("lost", "no_budget")),
            (1, Reply("No problem Yaa, we will be here after the harvest.")),
        ),
    ),
    Story(
        NANA,
        day(-11, "18:20"),
        (
            (0, In("Who is this please?")),
            (
                14,
                Reply(
                    "Hi Nana, it is Sunrise Solar: you signed up at the Kumasi agric fair. "
                    "Reply STOP if you do not want our offers."
                ),
            ),
            (9, In("Ok thank you. I remember")),
            (40, Thread("closed")),
        ),
    ),
)

# -- the rest: short scenarios, drawn ------------------------------------------------------------

FIRST = {
    "GH": [
        "Kwaku",
        "Akua",
        "Kojo",
        "Esi",
        "Yaw",
        "Adjoa",
        "Kwesi",
        "Ama",
        "Fiifi",
        "Afua",
        "Selorm",
        "Edem",
        "Naa",
        "Nii",
        "Dzifa",
        "Mawuli",
        "Aba",
        "Kobby",
    ],
    "KE": [
        "Wanjiku",
        "Kipchoge",
        "Achieng",
        "Mutua",
        "Njeri",
        "Omondi",
        "Chebet",
        "Kamau",
        "Atieno",
        "Kiptoo",
        "Nyokabi",
        "Barasa",
        "Awino",
        "Mwende",
    ],
    "NG": [
        "Ngozi",
        "Tunde",
        "Aisha",
        "Ifeanyi",
        "Bola",
        "Yusuf",
        "Chioma",
        "Segun",
        "Zainab",
        "Obinna",
        "Funmi",
        "Sani",
        "Amaka",
        "Kelechi",
    ],
}
LAST = {
    "GH": [
        "Mensah",
        "Owusu",
        "Boateng",
        "Agyei",
        "Ansah",
        "Tetteh",
        "Addo",
        "Amoah",
        "Quartey",
        "Nkrumah",
        "Darko",
        "Adjei",
        "Lamptey",
        "Gyamfi",
    ],
    "KE": [
        "Kariuki",
        "Otieno",
        "Wanjala",
        "Kiprono",
        "Muthoni",
        "Odhiambo",
        "Njoroge",
        "Rotich",
        "Maina",
        "Wafula",
        "Kimani",
        "Ouma",
    ],
    "NG": [
        "Adeyemi",
        "Okonkwo",
        "Abubakar",
        "Eze",
        "Balogun",
        "Musa",
        "Okeke",
        "Adebayo",
        "Danjuma",
        "Nwachukwu",
        "Olawale",
        "Garba",
    ],
}
PREFIXES = {
    "GH": ["24", "54", "55", "59", "20", "50", "27", "57", "26"],
    "KE": ["710", "711", "712", "715", "720", "722", "725", "728", "740", "745", "757", "790"],
    "NG": ["803", "806", "813", "816", "703", "706", "810", "814", "903", "905", "802", "808"],
}
CALLING = {"GH": "233", "KE": "254", "NG": "234"}
TOWNS = {
    "GH": ["Accra", "Kumasi", "Tamale", "Takoradi", "Cape Coast", "Ho", "Sunyani", "Koforidua"],
    "KE": ["Nairobi", "Kisumu", "Nakuru", "Eldoret", "Thika", "Machakos", "Nyeri", "Kitale"],
    "NG": ["Lagos", "Kano", "Ibadan", "Abuja", "Enugu", "Kaduna", "Jos", "Onitsha"],
}
CITY = {"GH": "Accra", "KE": "Nairobi", "NG": "Lagos"}
MOBILE_MONEY = {"GH": "MoMo", "KE": "M-Pesa", "NG": "transfer"}


NATIONAL_DIGITS = {"GH": 9, "KE": 9, "NG": 10}


def _phone(rng: random.Random, country: str, taken: set[str]) -> str:
    while True:
        prefix = rng.choice(PREFIXES[country])
        rest = NATIONAL_DIGITS[country] - len(prefix)
        candidate = (
            "+" + CALLING[country] + prefix + "".join(str(rng.randrange(10)) for _ in range(rest))
        )
        if candidate in taken:
            continue
        number = phonenumbers.parse(candidate)
        if phonenumbers.is_valid_number(number):
            taken.add(candidate)
            return candidate


def _scenario_price(rng: random.Random, p: Person) -> list[tuple[float, Step]]:
    cur = CURRENCY[p.country]
    key = rng.choice(["lamp", "home", "home", "tv", "tv", "fridge", "pump"])
    name, prices, daily = PRODUCTS[key]
    town = rng.choice(TOWNS[p.country])
    ask = rng.choice(
        [
            f"How much is the {name}?",
            f"Hello, please what is the price of the {name}?",
            f"Good afternoon. I saw your {name} on Facebook, how much?",
            f"Please do you have the {name} in stock? How much?",
            f"I am in {town}. How much for the {name} with delivery?",
        ]
    )
    steps: list[tuple[float, Step]] = [
        (0, In(ask)),
        (
            rng.uniform(4, 40),
            Reply(
                f"Hi {p.first_name}! The {name} is {money(cur, prices[cur])}, or "
                f"{money(cur, daily[cur])} a day on pay-as-you-go. Delivery to {town} is free.",
                read=p.channel == "whatsapp",
            ),
        ),
    ]
    follow = rng.random()
    if follow < 0.35:
        steps.append(
            (
                rng.uniform(10, 300),
                In(
                    rng.choice(
                        [
                            "Ok thank you, I will think about it",
                            "Thanks. Let me talk to my husband first",
                            "Ok I will call you next week",
                        ]
                    )
                ),
            )
        )
        steps.append((rng.uniform(30, 120), Thread("closed")))
    elif follow < 0.75:
        steps.append(
            (
                rng.uniform(10, 200),
                In(
                    rng.choice(
                        [
                            f"I want to buy it. How do I pay with {MOBILE_MONEY[p.country]}?",
                            "Ok I will take it. When can you deliver?",
                            "I want to order one please",
                        ]
                    )
                ),
            )
        )
        steps.append(
            (
                rng.uniform(5, 30),
                Reply(
                    f"Great! I have booked it for you {p.first_name}. You can pay by "
                    f"{MOBILE_MONEY[p.country]} and we deliver within 3 days.",
                    read=p.channel == "whatsapp",
                ),
            )
        )
        stage = rng.choice(["qualified", "proposal", "negotiation", "won", "won", "won"])
        title = f"{name[0].upper()}{name[1:]} - {p.name}"
        steps.append(
            (
                rng.uniform(2, 10),
                OpenDeal(title, prices[cur], cur, "proposal" if stage == "won" else stage),
            )
        )
        if stage == "won":
            steps.append(
                (
                    rng.uniform(60, 60 * 20),
                    In(
                        rng.choice(
                            [
                                "I have paid, please check",
                                f"Sent the money by {MOBILE_MONEY[p.country]} now",
                                "Payment done. Thank you",
                            ]
                        )
                    ),
                )
            )
            steps.append((rng.uniform(5, 25), MoveDeal("won")))
            steps.append(
                (
                    rng.uniform(1, 5),
                    Reply(
                        "Received with thanks! Delivery is booked.", read=p.channel == "whatsapp"
                    ),
                )
            )
    else:
        steps.append((rng.uniform(10, 100), In("Where is your shop please?")))
        steps.append((rng.uniform(20, 240), Thread("closed")))
    return steps


def _scenario_delivery(rng: random.Random, p: Person) -> list[tuple[float, Step]]:
    order = f"SS-{rng.randrange(3000, 5000)}"
    return [
        (
            0,
            In(
                rng.choice(
                    [
                        f"Hello, when will my order be delivered? Order {order}",
                        f"Please my kit has not arrived yet. Order number {order}",
                        f"Good morning, any news on my delivery? {order}",
                    ]
                )
            ),
        ),
        (
            rng.uniform(5, 60),
            Reply(
                f"Hi {p.first_name}, order {order} left our {CITY[p.country]} warehouse today, the "
                "driver will call you before he comes.",
                read=p.channel == "whatsapp",
            ),
        ),
        (
            rng.uniform(5, 60),
            In(
                rng.choice(
                    [
                        "Thank you very much",
                        "Ok thanks",
                        "Thank you, God bless",
                        "Great, thanks!",
                    ]
                )
            ),
        ),
        (rng.uniform(20, 200), Thread("closed")),
    ]


def _scenario_complaint(rng: random.Random, p: Person) -> list[tuple[float, Step]]:
    return [
        (
            0,
            In(
                rng.choice(
                    [
                        "The lamp is not charging well since last week. I am not happy",
                        "My radio from the home kit is not working. This is the second time",
                        "The panel you installed is loose, the light goes off at night. Very bad",
                    ]
                )
            ),
        ),
        (
            rng.uniform(10, 90),
            Reply(
                f"Sorry about this {p.first_name}. Our technician will come tomorrow to fix it, "
                "free of charge.",
                read=p.channel == "whatsapp",
            ),
        ),
        (
            rng.uniform(60 * 18, 60 * 26),
            In(
                rng.choice(
                    [
                        "The technician came and it is working now. Thank you",
                        "It is fixed, thank you for the quick help",
                        "Working well now. Thanks",
                    ]
                )
            ),
        ),
        (rng.uniform(10, 60), Thread("closed")),
    ]


def _scenario_hours(rng: random.Random, p: Person) -> list[tuple[float, Step]]:
    return [
        (
            0,
            In(
                rng.choice(
                    [
                        "What time do you open on Saturday?",
                        "Are you open today?",
                        "Where is your shop?",
                    ]
                )
            ),
        ),
        (
            rng.uniform(5, 90),
            In(
                rng.choice(
                    [
                        "Ok thanks, I will come",
                        "Thank you",
                        "Ok I will pass by on Saturday",
                    ]
                )
            ),
        ),
        (rng.uniform(20, 240), Thread("closed")),
    ]


def _scenario_optin(rng: random.Random, p: Person) -> list[tuple[float, Step]]:
    return [
        (0, In("START", channel="whatsapp")),
        (
            rng.uniform(1, 20),
            In(
                rng.choice(
                    [
                        "Please send me the prices",
                        "Hi, I want to know about pay as you go",
                        "Do you have the TV package?",
                    ]
                ),
                channel="whatsapp",
            ),
        ),
        (
            rng.uniform(5, 40),
            Reply(
                f"Karibu {p.first_name}! Lamp KES 3,500, home kit KES 14,000, TV package KES "
                "38,000. Pay-as-you-go from KES 50 a day.",
                channel="whatsapp",
                read=True,
            ),
        ),
    ]


def _scenario_ussd(rng: random.Random, p: Person) -> list[tuple[float, Step]]:
    code = "*384*1234#" if p.country == "KE" else "*920*44#"
    paths = [
        (("1", str(rng.randint(1, 5))), "Success"),
        (("1", "6"), "Success"),
        (("1",), "Incomplete"),
        ((), "Incomplete"),
        (("3", p.name), "Incomplete"),
        (("3", p.name, str(rng.randint(2, 9))), "Success"),
        (("2",), "Success"),
        (("6",), "Incomplete"),
        (
            (
                "6",
                rng.choice(
                    [
                        "Please I want the fridge for my shop, how much is the deposit",
                        "My lamp is not charging, please help",
                        "Do you deliver to my village? I want the home kit",
                    ]
                ),
            ),
            "Success",
        ),
        (("5",), "Success"),
        (("4",), "Success"),
    ]
    inputs, end = rng.choice(paths)
    steps: list[tuple[float, Step]] = [(0, Ussd(inputs, end, code))]
    if rng.random() < 0.3:
        # Never a call back after stopping promotions: the call back is answered by SMS.
        again, end2 = rng.choice([p for p in paths if p[0][:1] not in (("4",), ("5",))])
        steps.append((rng.uniform(60, 60 * 20), Ussd(again, end2, code)))
    return steps


def _scenario_call(rng: random.Random, p: Person) -> list[tuple[float, Step]]:
    kind = rng.choice(["menu", "menu", "answered", "missed", "hung_up", "voicemail"])
    if kind == "menu":
        return [(0, Call("menu", keys=("1", str(rng.randint(1, 5))), seconds=rng.randint(25, 70)))]
    if kind == "voicemail":
        words = rng.choice(
            [
                f"Hi, this is {p.first_name}. I want to know the price of the home kit. Please "
                "call me back.",
                f"Good afternoon, {p.first_name} here, about my order. The driver did not come. "
                "Call me.",
            ]
        )
        return [(0, Call("voicemail", seconds=rng.randint(30, 70), transcript=words))]
    seconds = rng.randint(90, 420) if kind == "answered" else rng.randint(36, 62)
    call = Call(kind, seconds=seconds, speech=rng.random() < 0.5)
    if kind == "answered":  # the rep asked the caller's name
        return [(0, call), (call.seconds / 60 + 3, Edit({"name": p.name}))]
    return [(0, call)]


FILLERS = 36  # drawn stories, besides the showcase and the fair's leads
SCENARIOS = (
    (_scenario_price, 10),
    (_scenario_delivery, 5),
    (_scenario_complaint, 3),
    (_scenario_hours, 3),
    (_scenario_ussd, 9),
    (_scenario_call, 7),
)


def fillers(
    count: int, *, seed: int = 2024, taken: set[str] | None = None, names: set[str] | None = None
) -> list[Story]:
    """``count`` short stories spread over the last month, the same ones for a given seed;
    ``taken`` phone numbers and ``names`` are not drawn again."""
    rng = random.Random(seed)
    taken = set(taken or ())
    names = set(names or ())
    stories: list[Story] = []
    scenarios = [s for s, weight in SCENARIOS for _ in range(weight)]
    kenya_optins = 4  # enough opted-in WhatsApp contacts for the draft campaign's segment
    for index in range(count):
        country = rng.choices(["GH", "KE", "NG"], weights=[5, 3, 2])[0]
        while True:
            name = f"{rng.choice(FIRST[country])} {rng.choice(LAST[country])}"
            if name not in names:
                names.add(name)
                break
        channel = "whatsapp" if rng.random() < (0.55 if country == "KE" else 0.3) else "sms"
        person = Person(
            f"f{index}",
            name,
            _phone(rng, country, taken),
            country,
            channel,
            "brian" if country == "KE" else "esi",
        )
        if country == "KE" and kenya_optins > 0:
            kenya_optins -= 1
            scenario = _scenario_optin
            person = Person(person.key, name, person.phone, country, "whatsapp", "brian")
        else:
            scenario = rng.choice(scenarios)
        steps = tuple(scenario(rng, person))
        hour = rng.randint(6, 16) if country != "KE" else rng.randint(4, 14)
        minute = rng.randrange(60)
        # Early enough that the whole story is over before today.
        days_needed = 2 + int((hour * 60 + minute + sum(after for after, _ in steps)) // 1440)
        start = day(-rng.randint(days_needed, 29), f"{hour:02d}:{minute:02d}")
        stories.append(Story(person, start, steps))
    return stories


def all_stories() -> list[Story]:
    """Every story of the demo."""
    taken = {s.person.phone for s in SHOWCASE + CAMPAIGN_STORIES + USSD_WALKERS}
    taken |= {_ghana(row["phone"]) for row in FAIR_LEADS}
    names = {s.person.name for s in SHOWCASE + CAMPAIGN_STORIES + USSD_WALKERS}
    names |= {row["name"] for row in FAIR_LEADS}
    return [
        *SHOWCASE,
        *CAMPAIGN_STORIES,
        *USSD_WALKERS,
        *fillers(FILLERS, taken=taken, names=names),
    ]
