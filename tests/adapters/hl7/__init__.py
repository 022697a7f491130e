"""Tests of the HL7 v2 adapters (MLLP, acknowledgements, the ADT feed)."""
