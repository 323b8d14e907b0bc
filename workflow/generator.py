"""A synthetic industrial directory for a campaign city (demo, tests, benchmarks): realistic firm names,
principals and contacts, districts and sectors in the campaign's proportions, deterministic per seed."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import openpyxl

from workflow import uscc
from workflow.campaign import Campaign, District, Sector
from workflow.directory import COLUMNS

KEY_FIELD_ABOVE_SIZE = 0.25  # share of key-field firms above designated size
OTHER_ABOVE_SIZE = 0.065  # share of the others: about 1 in 12 overall with a tenth in key fields
KEY_FIELD_FILLED = 0.15  # rows whose 重点监管 cell is filled (the rest take the sector's default)
KEY_FIELD_OVERRIDE = 0.05  # of the filled cells, those that differ from the sector's default
EMAIL_BLANK = 0.15

# Trade-name (字号) syllables; two or three make a name.
_SYLLABLES = tuple(
    "恒华瑞通达鑫源盛泰丰宏远兴隆金龙天宇新创科晨阳光伟业海润嘉和"
    "永昌东方中正明诚信德安康博凯腾飞益佳锦银峰立汇联卓越精工力"
)
_WORDS = {
    "chemical": ("化工", "化学", "新材料", "精细化工", "涂料", "树脂", "助剂"),
    "pharmaceutical": ("制药", "医药", "生物医药", "药业", "医药化工"),
    "hazardous_chemicals": ("化学品", "气体", "石化", "危险品储运", "化工物流", "燃气"),
    "non_coal_mine": ("矿业", "石料", "砂石", "建材矿业"),
    "metallurgy": ("钢铁", "特钢", "冶金", "铸造", "金属材料"),
    "nonferrous": ("铝业", "铜业", "有色金属", "合金材料"),
    "building_materials": ("建材", "水泥", "玻璃", "陶瓷", "新型建材", "混凝土"),
    "machinery": ("机械", "机电", "精密机械", "传动设备", "液压", "电机", "数控设备", "汽车零部件", "轴承"),
    "light_industry": ("食品", "家具", "塑料制品", "包装", "纸业", "日用品", "印刷"),
    "textile": ("纺织", "织造", "印染", "服饰", "纱线", "无纺布"),
    "electronics": ("电子", "光电", "半导体", "电子科技", "智能科技", "电器"),
    "other": ("实业", "工贸", "科技", "制造", "工业"),
}
_GENERIC_WORDS = ("实业", "科技", "制造", "工业")
_FORMS = (("有限公司", 0.8), ("股份有限公司", 0.12), ("有限责任公司", 0.08))

# Common surnames with their pinyin (for email local parts), most frequent first.
_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"),
    ("林", "lin"), ("罗", "luo"), ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"),
    ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"), ("袁", "yuan"),
    ("潘", "pan"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"), ("叶", "ye"),
    ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"), ("沈", "shen"),
    ("姚", "yao"), ("陆", "lu"), ("钱", "qian"), ("顾", "gu"), ("汤", "tang"), ("殷", "yin"),
    ("史", "shi"), ("恽", "yun"), ("盛", "sheng"), ("储", "chu"), ("邹", "zou"), ("戴", "dai"),
)  # fmt: skip
_SURNAME_WEIGHTS = tuple(1.0 / (rank + 8) for rank in range(len(_SURNAMES)))
_GIVEN = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚华建国志海燕红梅文斌"
    "鹏辉玲晨浩宇俊峰琳雪晓东亮健波荣新春云飞卫忠兵英玉萍彬林锋凯"
)
_MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *("150", "151", "152", "155", "156", "157", "158", "159", "166", "173", "177"),
    *("180", "181", "182", "183", "186", "187", "188", "189", "198", "199"),
)
# Synthetic addresses live under reserved domains only (RFC 2606), shaped like the common providers'.
_MAIL_DOMAINS = (
    ("163.example.com", 4),
    ("qq.example.com", 4),
    ("126.example.com", 2),
    ("139.example.com", 1),
    ("sina.example.com", 1),
    ("aliyun.example.com", 1),
)
_CORPORATE_LOCAL = ("info", "office", "aq", "anquan", "safety", "admin", "hr")

_ORG_SPACE = 31**8  # the first eight characters of the organisation code


def _cumulative(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _place_prefix(city: str, district: District) -> str:
    """How a firm's registered name begins in its district: 溧阳市…, 常州市武进…, 常州…"""
    if district.name.endswith("市"):
        return district.name
    if district.name.endswith("区") and len(district.name) == 3:
        return city + district.name[:-1]
    return city


class _Maker:
    def __init__(self, seed: int, campaign: Campaign) -> None:
        self.rng = random.Random(seed)
        self.campaign = campaign
        self.districts = list(campaign.districts)
        self.district_cum = _cumulative([d.weight for d in self.districts])
        self.sectors = [s for s in campaign.sectors if s.weight > 0]
        self.sector_cum = _cumulative([s.weight for s in self.sectors])
        self.surname_cum = _cumulative(list(_SURNAME_WEIGHTS))
        self.domain_cum = _cumulative([float(w) for _, w in _MAIL_DOMAINS])
        self.form_cum = _cumulative([w for _, w in _FORMS])
        city = campaign.campaign.city
        self.city = city
        self.city_short = city.removesuffix("市")
        # A bijection index -> organisation code keeps every credit code unique without remembering them.
        self.stride = self.rng.randrange(1, _ORG_SPACE)
        while self.stride % 31 == 0:
            self.stride = self.rng.randrange(1, _ORG_SPACE)
        self.offset = self.rng.randrange(_ORG_SPACE)

    def credit_code(self, index: int, district: District) -> str:
        n = (self.offset + index * self.stride) % _ORG_SPACE
        org = ""
        for _ in range(8):
            n, digit = divmod(n, 31)
            org += uscc.ALPHABET[digit]
        first17 = f"91{district.code}{org}{self.rng.choice(uscc.ALPHABET[:10])}"
        return first17 + uscc.check_character(first17)

    def firm_name(self, district: District, sector: Sector) -> str:
        rng = self.rng
        trade = "".join(rng.choice(_SYLLABLES) for _ in range(3 if rng.random() < 0.3 else 2))
        word = rng.choice(_WORDS.get(sector.code, _GENERIC_WORDS))
        form = _FORMS[self._pick(self.form_cum)][0]
        if form == "股份有限公司" and rng.random() < 0.6:
            prefix = "江苏"
        else:
            roll = rng.random()
            if roll < 0.5:
                prefix = _place_prefix(self.city, district)
            elif roll < 0.8:
                prefix = self.city
            else:
                prefix = self.city_short
        return f"{prefix}{trade}{word}{form}"

    def principal(self) -> tuple[str, str]:
        surname, pinyin = _SURNAMES[self._pick(self.surname_cum)]
        given = "".join(self.rng.choice(_GIVEN) for _ in range(1 if self.rng.random() < 0.35 else 2))
        return surname + given, pinyin

    def phone(self) -> str:
        return self.rng.choice(_MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def email(self, pinyin: str) -> str:
        rng = self.rng
        domain = _MAIL_DOMAINS[self._pick(self.domain_cum)][0]
        if domain == "qq.example.com":
            return f"{rng.randrange(10**5, 10**10)}@{domain}"
        roll = rng.random()
        if roll < 0.6:
            local = f"{pinyin}{rng.randrange(10, 10000)}"
        elif roll < 0.85:
            local = f"{pinyin}_{rng.choice(('cz', 'js', 'anquan', 'aq'))}{rng.randrange(1, 100)}"
        else:
            local = f"{rng.choice(_CORPORATE_LOCAL)}{rng.randrange(1, 1000)}"
        return f"{local}@{domain}"

    def _pick(self, cumulative: list[float]) -> int:
        x = self.rng.random() * cumulative[-1]
        for i, edge in enumerate(cumulative):
            if x < edge:
                return i
        return len(cumulative) - 1

    def row(self, index: int) -> dict[str, str]:
        rng = self.rng
        district = self.districts[self._pick(self.district_cum)]
        sector = self.sectors[self._pick(self.sector_cum)]
        key_field = sector.key_field
        key_cell = ""
        if rng.random() < KEY_FIELD_FILLED:
            if rng.random() < KEY_FIELD_OVERRIDE:
                key_field = not key_field
            key_cell = "是" if key_field else "否"
        above = rng.random() < (KEY_FIELD_ABOVE_SIZE if key_field else OTHER_ABOVE_SIZE)
        principal, pinyin = self.principal()
        return {
            "uscc": self.credit_code(index, district),
            "name": self.firm_name(district, sector),
            "district": district.name,
            "sector": sector.name,
            "key_field": key_cell,
            "above_size": "是" if above else "否",
            "principal": principal,
            "phone": self.phone(),
            "email": "" if rng.random() < EMAIL_BLANK else self.email(pinyin),
        }


def iter_rows(count: int, seed: int, campaign: Campaign) -> Iterator[dict[str, str]]:
    """`count` directory rows, keyed by field (uscc, name, district, …), as a clerk would type them."""
    if count > _ORG_SPACE:
        raise ValueError(f"at most {_ORG_SPACE} rows")
    maker = _Maker(seed, campaign)
    for index in range(count):
        yield maker.row(index)


def write_directory(path: Path, *, count: int, seed: int, campaign: Campaign) -> None:
    """Write a synthetic directory: XLSX when `path` ends in .xlsx, else UTF-8 CSV; Chinese headers."""
    fields = [c.field for c in COLUMNS]
    header = [c.zh for c in COLUMNS]
    rows = iter_rows(count, seed, campaign)
    if path.suffix.lower() == ".xlsx":
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("企业名录")
        sheet.append(header)
        for row in rows:
            sheet.append([row.get(f, "") for f in fields])
        workbook.save(path)
        return
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(f, "") for f in fields])
