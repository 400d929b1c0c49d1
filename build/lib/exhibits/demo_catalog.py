"""The built-in demo exhibition: 126 illustrative projects from 25 countries and regions.

Owns the demo's content: which countries show what (a table written by hand, with China,
the host, filling every category up to an even spread), and the bilingual vocabulary that
titles and summaries are composed from. Everything is fictional and says so: the
organisations end in "(demo)", summaries end by calling the project illustrative, contacts
use example.org/.com/.net addresses, and every exhibit has ``demo=True``. The list is the
same on every call (a fixed-seed generator picks the wording); booths follow the hall's
label rule (:func:`exhibits.hall.with_booths`).
"""

from __future__ import annotations

import random

from exhibits.catalog import Category, Exhibit, InvestmentStage
from exhibits.hall import with_booths

C = Category

#: Category slug used in ids ("cn-hydrogen-01"), the word used in organisation names,
#: and the envelope (w, h, d) its models are fitted into.
KINDS: dict[Category, tuple[str, str, tuple[float, float, float]]] = {
    C.HYDROGEN: ("hydrogen", "Hydrogen", (4.0, 3.0, 4.0)),
    C.STORAGE: ("storage", "Energy Storage", (4.0, 3.0, 4.0)),
    C.BATTERY_SWAP: ("swap", "Battery Swap", (4.0, 3.5, 4.0)),
    C.SOLAR: ("solar", "Solar", (4.0, 2.5, 4.0)),
    C.WIND: ("wind", "Wind", (4.0, 6.0, 4.0)),
    C.SMART_GRID: ("grid", "Grid Systems", (4.0, 4.5, 4.0)),
    C.GREEN_BUILDING: ("building", "Green Buildings", (4.0, 5.0, 4.0)),
    C.CCUS: ("ccus", "Carbon Capture", (4.0, 5.0, 4.0)),
    C.WASTE: ("recycling", "Recycling", (4.0, 3.0, 4.0)),
    C.WATER: ("water", "Water", (4.0, 3.0, 4.0)),
    C.TRANSPORT: ("transport", "Mobility", (4.0, 3.0, 4.0)),
    C.MATERIALS: ("materials", "Materials", (4.0, 3.5, 4.0)),
}

# (English, Chinese, numbers for "{n}"); the title is "<product> for <application>".
Product = tuple[str, str, tuple[int, ...]]
Phrase = tuple[str, str]

PRODUCTS: dict[Category, list[Product]] = {
    C.HYDROGEN: [
        ("{n} kW PEM fuel-cell stack", "{n}千瓦质子交换膜燃料电池电堆", (80, 120, 150)),
        ("{n} MW alkaline electrolyser", "{n}兆瓦碱性电解槽", (5, 10, 20)),
        ("{n} MPa composite hydrogen tank", "{n}兆帕复合材料储氢瓶", (35, 70)),
        ("Skid-mounted {n} kg/day refuelling station", "日加注{n}公斤的撬装式加氢站", (500, 1000)),
    ],
    C.STORAGE: [
        ("Containerised {n} MWh LFP storage", "{n}兆瓦时集装箱式磷酸铁锂储能", (2, 3, 5)),
        ("{n}-hour sodium-ion storage", "{n}小时钠离子储能系统", (2, 4)),
        ("Second-life {n} MWh battery storage", "{n}兆瓦时梯次利用电池储能", (1, 2)),
        ("{n} MW vanadium flow battery", "{n}兆瓦全钒液流电池", (5, 10)),
    ],
    C.BATTERY_SWAP: [
        ("Five-minute battery swap station", "五分钟换电站", ()),
        ("{n} kWh swappable pack", "{n}千瓦时可换电池包", (282, 350, 423)),
        ("Smart storage-and-swap station", "智能储能换电站", ()),
        ("Battery-as-a-service platform", "电池租用服务平台", ()),
    ],
    C.SOLAR: [
        ("Bifacial PV carport kit", "双面光伏车棚套件", ()),
        ("{n}% efficient heterojunction modules", "转换效率{n}%的异质结组件", (24, 25)),
        ("Floating PV array", "漂浮式光伏阵列", ()),
        ("Building-integrated PV facade", "光伏建筑一体化幕墙", ()),
    ],
    C.WIND: [
        ("{n} kW small wind turbine", "{n}千瓦小型风机", (50, 100)),
        ("Floating offshore foundation", "漂浮式海上风电基础", ()),
        ("Recyclable {n} m turbine blade", "可回收的{n}米风机叶片", (80, 100)),
        ("Drone blade inspection service", "无人机叶片巡检服务", ()),
    ],
    C.SMART_GRID: [
        ("Virtual power plant software", "虚拟电厂平台软件", ()),
        ("Vehicle-to-grid bidirectional charger", "车网互动双向充电桩", ()),
        ("Solid-state transformer", "固态变压器", ()),
        ("AI load forecasting of {n} kV feeders", "{n}千伏配电线路人工智能负荷预测", (10, 35)),
    ],
    C.GREEN_BUILDING: [
        ("Near-zero-energy retrofit package", "近零能耗改造方案", ()),
        ("Prefabricated timber housing system", "装配式木结构住宅体系", ()),
        ("Green roof and facade planting system", "屋顶与立面绿化系统", ()),
        ("Ground-source heat pump with {n}% lower bills", "节省{n}%能源费用的地源热泵", (30, 40)),
    ],
    C.CCUS: [
        ("{n} kt/yr amine CO₂ capture unit", "年捕集{n}千吨二氧化碳的胺法捕集装置", (50, 100)),
        ("Direct air capture module", "直接空气捕集模块", ()),
        ("CO₂-to-methanol conversion unit", "二氧化碳制甲醇装置", ()),
        ("Mineralisation of CO₂ into aggregates", "二氧化碳矿化骨料", ()),
    ],
    C.WASTE: [
        ("AI-guided sorting line", "人工智能分选线", ()),
        ("Food-waste digester producing biogas", "餐厨垃圾厌氧发酵产沼系统", ()),
        ("Lithium battery recycling at {n}% recovery", "回收率{n}%的锂电池回收工艺", (92, 95)),
        ("Textile-to-fibre recycling plant", "废旧纺织品再生纤维工厂", ()),
    ],
    C.WATER: [
        ("Permeable paving system", "透水铺装系统", ()),
        ("Rain-garden and bioswale kit", "雨水花园与生态草沟套件", ()),
        ("Smart stormwater tank", "智能雨水调蓄池", ()),
        ("Water-main leak sensors", "供水管网漏损监测传感器", ()),
    ],
    C.TRANSPORT: [
        ("{n} m battery-electric bus", "{n}米纯电动公交车", (10, 12)),
        ("Catenary-free tram", "无接触网有轨电车", ()),
        ("Pantograph opportunity charger", "受电弓快速充电站", ()),
        ("Electric cargo bike fleet", "电动货运自行车车队", ()),
    ],
    C.MATERIALS: [
        ("Low-clinker cement with {n}% less CO₂", "二氧化碳减排{n}%的低熟料水泥", (30, 40)),
        ("Cross-laminated timber panels", "正交胶合木板材", ()),
        ("Recycled-aggregate bricks", "再生骨料砖", ()),
        ("Electric ceramics kiln", "陶瓷电窑炉", ()),
    ],
}

APPLICATIONS: dict[Category, list[Phrase]] = {
    C.HYDROGEN: [
        ("heavy trucks", "重型卡车"),
        ("port logistics", "港口物流"),
        ("steel plants", "钢铁厂"),
        ("island microgrids", "海岛微电网"),
    ],
    C.STORAGE: [
        ("industrial parks", "工业园区"),
        ("data centres", "数据中心"),
        ("solar farms", "光伏电站"),
        ("rural grids", "农村电网"),
    ],
    C.BATTERY_SWAP: [
        ("heavy trucks", "重型卡车"),
        ("ride-hailing fleets", "网约车车队"),
        ("mining haulage", "矿山运输"),
        ("city logistics", "城市物流"),
    ],
    C.SOLAR: [
        ("factory roofs", "厂房屋顶"),
        ("fish ponds", "鱼塘"),
        ("office towers", "写字楼"),
        ("highway service areas", "高速公路服务区"),
    ],
    C.WIND: [
        ("island grids", "海岛电网"),
        ("deep-water sites", "深水海域"),
        ("mountain farms", "山地风场"),
        ("coastal towns", "沿海城镇"),
    ],
    C.SMART_GRID: [
        ("city districts", "城市片区"),
        ("bus depots", "公交场站"),
        ("industrial parks", "工业园区"),
        ("distribution utilities", "配电公司"),
    ],
    C.GREEN_BUILDING: [
        ("old residential blocks", "老旧小区"),
        ("schools", "学校"),
        ("hospitals", "医院"),
        ("office parks", "办公园区"),
    ],
    C.CCUS: [
        ("cement plants", "水泥厂"),
        ("coal power units", "燃煤机组"),
        ("chemical parks", "化工园区"),
        ("urban districts", "城市片区"),
    ],
    C.WASTE: [
        ("megacities", "超大城市"),
        ("industrial parks", "工业园区"),
        ("county towns", "县城"),
        ("shopping malls", "购物中心"),
    ],
    C.WATER: [
        ("sponge-city districts", "海绵城市片区"),
        ("old town streets", "老城街道"),
        ("university campuses", "大学校园"),
        ("riverside parks", "滨河公园"),
    ],
    C.TRANSPORT: [
        ("city routes", "城市线路"),
        ("airport shuttles", "机场接驳"),
        ("new towns", "新城"),
        ("last-mile delivery", "末端配送"),
    ],
    C.MATERIALS: [
        ("high-rise construction", "高层建筑"),
        ("bridges", "桥梁"),
        ("public housing", "保障性住房"),
        ("interior fit-out", "室内装修"),
    ],
}

# One sentence each; "{p}" takes one of the percentages that follow it.
Benefit = tuple[str, str, tuple[int, ...]]

BENEFITS: dict[Category, list[Benefit]] = {
    C.HYDROGEN: [
        ("Cuts diesel use by {p}% over the duty cycle", "全工况柴油消耗降低{p}%", (60, 80, 100)),
        ("Runs on green hydrogen from curtailed wind", "使用弃风电力制取的绿氢", ()),
    ],
    C.STORAGE: [
        ("Shifts {p}% of peak demand to off-peak hours", "将{p}%的峰值负荷转移至低谷时段", (15, 20, 30)),
        ("Keeps cells below 35 °C with liquid cooling", "液冷将电芯温度控制在35摄氏度以下", ()),
    ],
    C.BATTERY_SWAP: [
        ("Gets a truck back on the road {p}% sooner than charging", "补能时间比充电缩短{p}%", (70, 80, 90)),
        ("Charges packs off-peak and sells the flexibility", "低谷充电并出售灵活性", ()),
    ],
    C.SOLAR: [
        ("Yields {p}% more energy per square metre", "单位面积发电量提高{p}%", (5, 8, 12)),
        ("Installs without penetrating the roof", "安装无需穿透屋面", ()),
    ],
    C.WIND: [
        ("Lowers the cost of energy by {p}%", "度电成本降低{p}%", (8, 12, 15)),
        ("Designed for typhoon-class winds", "可抵御台风级大风", ()),
    ],
    C.SMART_GRID: [
        (
            "Frees {p}% of feeder capacity without new lines",
            "无需新建线路即可释放{p}%的线路容量",
            (10, 15, 20),
        ),
        ("Dispatches thousands of devices within seconds", "数秒内调度数千台设备", ()),
    ],
    C.GREEN_BUILDING: [
        ("Cuts heating and cooling energy by {p}%", "供暖制冷能耗降低{p}%", (40, 50, 60)),
        ("Installs while residents stay at home", "施工期间居民无需搬离", ()),
    ],
    C.CCUS: [
        ("Captures {p}% of the CO₂ in the flue gas", "捕集烟气中{p}%的二氧化碳", (85, 90, 95)),
        ("Turns captured carbon into saleable products", "将捕集的碳转化为可销售产品", ()),
    ],
    C.WASTE: [
        ("Raises the recycling rate by {p} points", "回收率提高{p}个百分点", (10, 15, 20)),
        ("Pays back in under four years", "投资回收期少于四年", ()),
    ],
    C.WATER: [
        ("Holds {p}% of a ten-year storm on site", "就地消纳{p}%的十年一遇降雨", (70, 80, 90)),
        ("Cools streets by up to 2 °C in summer", "夏季街道降温最多2摄氏度", ()),
    ],
    C.TRANSPORT: [
        ("Cuts operating costs by {p}% against diesel", "运营成本比柴油车降低{p}%", (20, 30, 40)),
        ("Charges in ten minutes at the terminus", "在终点站十分钟完成充电", ()),
    ],
    C.MATERIALS: [
        ("Embodies {p}% less carbon than the usual product", "隐含碳比常规产品低{p}%", (20, 30, 40)),
        ("Uses local demolition waste as feedstock", "以本地拆除废料为原料", ()),
    ],
}

STAGES: dict[InvestmentStage, Phrase] = {
    InvestmentStage.SEED: ("seed funding", "种子轮融资"),
    InvestmentStage.SERIES_A: ("a Series A round", "A轮融资"),
    InvestmentStage.SERIES_B: ("a Series B round", "B轮融资"),
    InvestmentStage.GROWTH: ("growth capital", "成长期资本"),
    InvestmentStage.PROJECT_FINANCE: ("project finance for its first plant", "首个项目的项目融资"),
    InvestmentStage.STRATEGIC: ("a strategic partner in China", "中国战略合作伙伴"),
}

BY_SLUG = {kind[0]: category for category, kind in KINDS.items()}

# Country: (name prefix and legal form, pilot cities in English and Chinese, what it shows).
# China is not listed: it fills every category up to an even spread.
COUNTRIES: dict[str, tuple[str, str, list[Phrase], str]] = {
    "DE": (
        "Beispiel",
        "GmbH",
        [("Hamburg", "汉堡"), ("Munich", "慕尼黑")],
        "hydrogen storage solar wind building grid materials transport ccus",
    ),
    "FR": (
        "Exemple",
        "SAS",
        [("Lyon", "里昂"), ("Grenoble", "格勒诺布尔")],
        "hydrogen transport water building recycling grid",
    ),
    "GB": (
        "Example",
        "Ltd",
        [("Glasgow", "格拉斯哥"), ("Manchester", "曼彻斯特")],
        "wind ccus grid storage building hydrogen",
    ),
    "DK": (
        "Eksempel",
        "ApS",
        [("Aarhus", "奥胡斯"), ("Copenhagen", "哥本哈根")],
        "wind wind grid water recycling",
    ),
    "IL": (
        "Dugma",
        "Ltd",
        [("Haifa", "海法"), ("Tel Aviv", "特拉维夫")],
        "water water solar storage recycling",
    ),
    "NL": ("Voorbeeld", "B.V.", [("Rotterdam", "鹿特丹")], "water hydrogen recycling materials"),
    "SE": ("Exempel", "AB", [("Gothenburg", "哥德堡")], "recycling materials transport building"),
    "FI": ("Esimerkki", "Oy", [("Espoo", "埃斯波")], "materials recycling ccus"),
    "NO": ("Eksempel", "AS", [("Bergen", "卑尔根")], "ccus hydrogen transport"),
    "CH": ("Muster", "AG", [("Zurich", "苏黎世")], "storage building solar"),
    "AT": ("Muster", "GmbH", [("Graz", "格拉茨")], "building materials hydrogen"),
    "IT": ("Esempio", "S.r.l.", [("Turin", "都灵")], "solar recycling materials"),
    "ES": ("Ejemplo", "S.L.", [("Valencia", "瓦伦西亚")], "solar wind water"),
    "JP": ("Rei", "K.K.", [("Kitakyushu", "北九州")], "hydrogen storage swap building"),
    "KR": ("Yesi", "Co., Ltd.", [("Ulsan", "蔚山")], "storage hydrogen swap"),
    "SG": ("Contoh", "Pte. Ltd.", [("Singapore", "新加坡")], "water building grid"),
    "AU": ("Sample", "Pty Ltd", [("Adelaide", "阿德莱德")], "solar storage ccus"),
    "CA": ("Exemplar", "Inc.", [("Calgary", "卡尔加里")], "ccus hydrogen swap"),
    "US": ("Placeholder", "Inc.", [("Austin", "奥斯汀"), ("Pittsburgh", "匹兹堡")], "storage ccus grid swap"),
    "NZ": ("Tauira", "Ltd", [("Wellington", "惠灵顿")], "wind water"),
    "BE": ("Exemple", "NV", [("Ghent", "根特")], "recycling grid"),
    "HK": ("Fanli", "Ltd", [("Hong Kong", "香港")], "building transport"),
    "PT": ("Exemplo", "Lda", [("Porto", "波尔图")], "wind solar"),
    "IE": ("Sampla", "Ltd", [("Cork", "科克")], "grid"),
}
CN_PREFIXES = ("Pengcheng", "Qianhai", "Nanling", "Xinghe", "Haibin", "Dawan", "Yuehai", "Lüyuan")
CN_CITIES: list[Phrase] = [
    ("Shenzhen", "深圳"),
    ("Guangzhou", "广州"),
    ("Shanghai", "上海"),
    ("Chengdu", "成都"),
    ("Tangshan", "唐山"),
]
#: How many exhibits the demo has; China's share is what the table above leaves.
TOTAL = 126
SEED = 20201206


def _roster() -> list[tuple[str, Category]]:
    """(country, category) of every demo exhibit: the table, then China evening out the spread."""
    roster = [(country, BY_SLUG[slug]) for country, row in COUNTRIES.items() for slug in row[3].split()]
    counts = {category: sum(1 for _, c in roster if c is category) for category in Category}
    per, extra = divmod(TOTAL, len(Category))
    for index, category in enumerate(Category):
        target = per + (1 if index < extra else 0)
        if counts[category] > target:
            raise ValueError(f"demo table has too many {category.value} exhibits")
        roster += [("CN", category)] * (target - counts[category])
    return roster


def _exhibit(country: str, category: Category, n: int, r: random.Random, wording: tuple[int, int]) -> Exhibit:
    slug, word, envelope = KINDS[category]
    product_en, product_zh, numbers = PRODUCTS[category][wording[0]]
    app_en, app_zh = APPLICATIONS[category][wording[1]]
    number = str(r.choice(numbers)) if numbers else ""
    product_en, product_zh = product_en.replace("{n}", number), product_zh.replace("{n}", number)
    benefit_en, benefit_zh, percents = r.choice(BENEFITS[category])
    percent = str(r.choice(percents)) if percents else ""
    benefit_en, benefit_zh = benefit_en.replace("{p}", percent), benefit_zh.replace("{p}", percent)
    stage = r.choice(list(InvestmentStage))
    if country == "CN":
        # Distinct within a category: China has at most len(CN_PREFIXES) per category.
        prefix, legal, cities = CN_PREFIXES[(n - 1) % len(CN_PREFIXES)], "Co., Ltd.", CN_CITIES
        name = f"{prefix} {word} Technology"
    else:
        prefix, legal, cities, _ = COUNTRIES[country]
        name = f"{prefix} {word}" + (f" {n}" if n > 1 else "")
    city_en, city_zh = r.choice(cities)
    year = r.randint(2016, 2020)
    stage_en, stage_zh = STAGES[stage]
    if country == "CN" and stage is InvestmentStage.STRATEGIC:
        stage_en, stage_zh = "a strategic partner abroad", "海外战略合作伙伴"
    mailbox, tld = r.choice(("bd", "invest", "partners", "hello")), r.choice(("org", "com", "net"))
    host = "-".join(name.lower().replace("ü", "u").split())
    return Exhibit(
        id=f"{country.lower()}-{slug}-{n:02d}",
        title_en=f"{product_en} for {app_en}",
        title_zh=f"面向{app_zh}的{product_zh}",
        organisation=f"{name} {legal} (demo)",
        country=country,
        category=category,
        summary_en=(
            f"{benefit_en}. Piloted in {city_en} since {year}; the team seeks {stage_en}. "
            "Illustrative demo project."
        ),
        summary_zh=f"{benefit_zh}。自{year}年起在{city_zh}试点，寻求{stage_zh}。示例演示项目。",
        investment_stage=stage,
        contact=f"{mailbox}@{host}.example.{tld}",
        booth="",
        envelope=envelope,
        demo=True,
        tags=("demo", slug),
    )


def demo_catalog() -> list[Exhibit]:
    """The demo exhibits, with booth labels, in a fixed order (the same list every call)."""
    r = random.Random(SEED)  # noqa: S311 - reproducible wording, not security
    # Each category deals its product x application pairs in a shuffled order, so no two
    # of its exhibits share a title.
    wordings: dict[Category, list[tuple[int, int]]] = {}
    for category in Category:
        pairs = [(p, a) for p in range(len(PRODUCTS[category])) for a in range(len(APPLICATIONS[category]))]
        r.shuffle(pairs)
        wordings[category] = pairs
    numbers: dict[tuple[str, Category], int] = {}
    exhibits = []
    for country, category in _roster():
        n = numbers[country, category] = numbers.get((country, category), 0) + 1
        exhibits.append(_exhibit(country, category, n, r, wordings[category].pop()))
    return with_booths(exhibits)
