"""The statistic table: what each statistic reads and how it is finished."""
