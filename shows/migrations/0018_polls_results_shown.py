from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shows", "0017_giveaways_language"),
    ]

    operations = [
        migrations.AddField(
            model_name="poll",
            name="results_shown_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
