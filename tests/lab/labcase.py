"""The set-up every lab test shares: a scratch folder, a private PostgreSQL,
a lab of network namespaces, and the processes the test starts, all ended
(by PID) and removed in tearDownClass, also when set-up fails half way."""

import os
import unittest

import nvlab
import nvtest


class LabTestCase(unittest.TestCase):
    TAG = "lab"          # scratch folder prefix
    HOSTS = 3            # lab hosts
    LAB_OPTIONS = {}     # more nvlab.Lab keyword arguments

    @classmethod
    def setUpClass(cls):
        cls.dir = nvtest.scratch_dir(cls.TAG)
        cls.pg = nvtest.Postgres(os.path.join(cls.dir, "pg"))
        cls.pg.start()
        cls.procs = []
        cls.lab = None
        try:
            cls.lab = nvlab.Lab(hosts=cls.HOSTS, **cls.LAB_OPTIONS)
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls):
        """The test's own processes; append each to cls.procs."""

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            p.stop()
        if cls.lab is not None:
            cls.lab.close()
        cls.pg.stop()
