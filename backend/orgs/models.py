from tortoise import fields
from tortoise.models import Model


class Street(Model):
    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)

    class Meta:
        table = "street"


class Community(Model):
    id = fields.IntField(primary_key=True)
    street = fields.ForeignKeyField("linli.Street", related_name="communities")
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)
    # Key of the community's WeCom group robot (the part after ?key= in its webhook).
    wecom_robot_key = fields.CharField(max_length=128, null=True)
    # The staff member residents and helpers are put in touch with, and their work phone:
    # shown to a wish's claimer instead of the poster's own contact.
    contact_name = fields.CharField(max_length=32, default="")
    contact_phone = fields.CharField(max_length=32, default="")

    class Meta:
        table = "community"
        ordering = ("id",)


class Building(Model):
    """An office building (楼宇) whose workers join the lunchtime classes."""

    id = fields.IntField(primary_key=True)
    street = fields.ForeignKeyField("linli.Street", related_name="buildings")
    community = fields.ForeignKeyField("linli.Community", related_name="buildings", null=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)
    address = fields.CharField(max_length=128, default="")

    class Meta:
        table = "building"
        ordering = ("id",)


class Unit(Model):
    """A resident unit (驻区单位): company, school or agency based in the street."""

    id = fields.IntField(primary_key=True)
    street = fields.ForeignKeyField("linli.Street", related_name="units")
    community = fields.ForeignKeyField("linli.Community", related_name="units", null=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=128)

    class Meta:
        table = "unit"
        ordering = ("id",)
