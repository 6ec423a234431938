using FluentAssertions;
using IMikelGo.School.Import;
using IMikelGo.School.Publishing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace IMikelGo.School.Tests;

public sealed class ServiceCollectionTests
{
    [Fact]
    public void AddIMikelGoSchool_registers_publisher_key_store_and_data_source()
    {
        var secret = new byte[32];
        using var sp = new ServiceCollection()
            .AddIMikelGoSchool(o =>
            {
                o.SchoolSecret = secret;
                o.DataSource = _ => JsonSchoolDataSource.FromJson(Json.DocBlock("json"));
            })
            .BuildServiceProvider();
        sp.GetRequiredService<ISchoolKeyStore>().Should().BeOfType<DerivedSchoolKeyStore>();
        var publisher = sp.GetRequiredService<TimetablePublisher>();
        publisher.Publish(sp.GetRequiredService<ISchoolDataSource>().Load()).AccountsOpened.Should().Be(2);
        using var again = new DerivedSchoolKeyStore(secret);
        publisher.ReplicaOf(new Engine.AccountId("anna")).Id.Should().Be(again.KeyFor(new Engine.AccountId("anna")).Replica, "keys derive from the school secret");
    }
}
