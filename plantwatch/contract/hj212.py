"""The HJ 212-2017 contract: command numbers, pollutant codes by map role, data flags, the Flag
field's bits (docs/hj212.md). The packet format itself is in plantwatch/hj212/packet.py."""

from __future__ import annotations

import re

# Command numbers (CN) plantwatch sends or answers.
CN_REALTIME = "2011"  # real-time data
CN_MINUTE = "2051"  # minute data (every 1, 5, 10 or 15 minutes)
CN_HOUR = "2061"  # hour data
CN_DAY = "2031"  # day data
CN_GET_TIME = "1011"  # the platform asks for the station's time; the station answers with it
CN_SET_TIME = "1012"  # the platform sets the station's time
CN_REQUEST_ANSWER = "9011"  # the station accepts a request (QnRtn)
CN_EXECUTION_RESULT = "9012"  # the station's result of a request (ExeRtn)
CN_DATA_ANSWER = "9014"  # the platform's answer to a data packet sent with Flag A
DATA_CNS = (CN_MINUTE, CN_HOUR, CN_DAY)  # kept in the record store and resent after outages
ST_PLATFORM = "91"  # the system code of answers (system interaction)

# QnRtn and ExeRtn values.
QN_ACCEPTED = "1"
QN_REFUSED = "2"
EXE_SUCCESS = "1"
EXE_FAILED = "2"
EXE_NO_DATA = "100"

# Flag = V5 V4 V3 V2 V1 V0 D A: the version (000001 for HJ 212-2017), D (PNUM/PNO present),
# A (an answer is wanted).
FLAG_VERSION_2017 = 1 << 2
FLAG_SPLIT = 1 << 1
FLAG_ANSWER = 1

MAX_SEGMENT = 1024  # characters of a data segment; longer ones are split (PNUM/PNO)
MN_PATTERN = re.compile(r"^[0-9A-Fa-f]{24}$")  # HJ 212-2017: 24 hex digits (an EPC-96 code)

# Pollutant codes by map role (Appendix B of the standard); a map field may name its own
# (`hj212: a34013`). Concentrations get O2-corrected (`Zs`) values when the stack has a
# reference O2 (alerts.o2_reference).
ROLE_CODES: dict[str, str] = {
    "dust_concentration": "a34013",
    "so2_concentration": "a21026",
    "nox_concentration": "a21002",
    "o2": "a19001",
    "flue_temperature": "a01012",
    "flue_flow": "a00000",
}
CORRECTED_CODES = frozenset({"a34013", "a21026", "a21002", "a21005", "a21001", "a21024"})
FLOW_CODE = "a00000"
KNOWN_CODES: dict[str, str] = {
    "a00000": "flue gas flow (m³/s; Cou m³)",
    "a01011": "flue gas velocity (m/s)",
    "a01012": "flue gas temperature (°C)",
    "a01013": "flue gas pressure (kPa)",
    "a01014": "flue gas humidity (%)",
    "a19001": "oxygen (%)",
    "a21001": "ammonia (mg/m³)",
    "a21002": "nitrogen oxides (mg/m³)",
    "a21003": "nitric oxide (mg/m³)",
    "a21004": "nitrogen dioxide (mg/m³)",
    "a21005": "carbon monoxide (mg/m³)",
    "a21024": "hydrogen chloride (mg/m³)",
    "a21026": "sulphur dioxide (mg/m³)",
    "a34013": "particulate matter, flue dust (mg/m³)",
}
# Data flags (the CEMS flag carries them): N normal, F stopped, M maintenance, S manual input,
# D fault, C calibration, T over the upper range, B communication abnormal.
DATA_FLAGS = frozenset("NFMSDCTB")
NORMAL = "N"
NO_DATA = "B"  # a period of a pollutant without one usable value
FAULT = "D"  # a sample whose CEMS flag is none of the above
