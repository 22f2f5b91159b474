from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shows", "0016_publisher_gone"),
    ]

    operations = [
        migrations.AddField(
            model_name="giveawayentry",
            name="language",
            field=models.CharField(blank=True, max_length=16),
        ),
    ]
